//! [`Mailer`] adapters.
//!
//! - [`OutboxMailer`], the embedded default: each message is an RFC 5322
//!   `.eml` file in `<data dir>/outbox/` (flat, one file per message,
//!   written to a hidden temporary file then renamed, mode 0600), for a
//!   relay or an operator to pick up.
//! - [`QueuedMailer`] with [`SmtpSender`]: messages are first inserted in
//!   the `mail_queue` table, then a worker sends them over SMTP (STARTTLS
//!   or TLS, with authentication) and retries with a growing delay while
//!   the server is down; nothing is lost across restarts, and several nodes
//!   may run workers (a row is claimed before it is sent).
//!
//! Messages have a plain-text and an HTML part (quoted-printable, UTF-8),
//! and are DKIM-signed when a key is configured ([`dkim_config`]).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use lettre::message::dkim::{DkimConfig, DkimSigningAlgorithm, DkimSigningKey};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;

use idp_core::clock::Clock;
use idp_core::ports::{Mailer, OutgoingMail};
use idp_core::{Error, Result};

use crate::storage;

/// DKIM settings: the key is read from a file (PKCS#1 PEM for `rsa`, the
/// base64 of the 32-byte secret for `ed25519`).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub private_key_file: PathBuf,
    /// `rsa` (default) or `ed25519`.
    #[serde(default = "rsa")]
    pub algorithm: String,
}

fn rsa() -> String {
    "rsa".into()
}

/// The signing configuration of `settings` (signs From, Subject, To, Date).
pub fn dkim_config(settings: &DkimSettings) -> Result<Arc<DkimConfig>> {
    let algorithm = match settings.algorithm.as_str() {
        "rsa" => DkimSigningAlgorithm::Rsa,
        "ed25519" => DkimSigningAlgorithm::Ed25519,
        other => return Err(Error::invalid("mail.dkim.algorithm", format!("'{other}': rsa or ed25519"))),
    };
    let key = std::fs::read_to_string(&settings.private_key_file).map_err(|e| {
        Error::invalid("mail.dkim.private_key_file", format!("{}: {e}", settings.private_key_file.display()))
    })?;
    let key = DkimSigningKey::new(key.trim(), algorithm)
        .map_err(|e| Error::invalid("mail.dkim.private_key_file", format!("{e:?}")))?;
    Ok(Arc::new(DkimConfig::default_config(settings.selector.clone(), settings.domain.clone(), key)))
}

/// Builds the RFC 5322 message of `mail` from `from`, signed when `dkim`
/// is given.
pub fn build_message(from: &Mailbox, mail: &OutgoingMail, dkim: Option<&DkimConfig>) -> Result<(Mailbox, Vec<u8>)> {
    let to: Mailbox = mail.to.parse().map_err(|e| Error::invalid("email", format!("{e}")))?;
    let part = |ct: ContentType, text: &str| -> Result<SinglePart> {
        let body = Body::new_with_encoding(text.to_owned(), ContentTransferEncoding::QuotedPrintable)
            .map_err(|_| storage("the message cannot be encoded"))?;
        Ok(SinglePart::builder().header(ct).body(body))
    };
    let text = part(ContentType::TEXT_PLAIN, &mail.text)?;
    let builder =
        Message::builder().from(from.clone()).to(to.clone()).subject(mail.subject.clone()).date_now().message_id(None);
    let mut message = match &mail.html {
        Some(html) => {
            builder.multipart(MultiPart::alternative().singlepart(text).singlepart(part(ContentType::TEXT_HTML, html)?))
        }
        None => builder.singlepart(text),
    }
    .map_err(storage)?;
    if let Some(config) = dkim {
        message.sign(config);
    }
    Ok((to, message.formatted()))
}

/// Writes `.eml` files to the outbox folder.
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
    dkim: Option<Arc<DkimConfig>>,
}

impl OutboxMailer {
    /// `from` is a mailbox (`ENT <no-reply@example.fr>`).
    pub fn new(dir: PathBuf, from: &str) -> Result<Self> {
        let from = from.parse().map_err(|e| Error::invalid("mail.from", format!("{e}")))?;
        Ok(Self { dir, from, dkim: None })
    }

    /// Signs every message with `dkim`.
    pub fn with_dkim(mut self, dkim: Option<Arc<DkimConfig>>) -> Self {
        self.dkim = dkim;
        self
    }
}

/// Writes `bytes` to `dir/name` atomically with mode 0600.
fn write_atomically(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: OutgoingMail) -> Result<()> {
        let (_, bytes) = build_message(&self.from, &mail, self.dkim.as_deref())?;
        let name = format!("{}-{}.eml", Utc::now().format("%Y%m%dT%H%M%S%.6fZ"), idp_core::secret::random_token(8)?);
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            write_atomically(&dir, &name, &bytes)
        })
        .await
        .map_err(storage)?
        .map_err(storage)
    }
}

/// SMTP settings.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// 587 for STARTTLS, 465 for TLS, 25 for a plain local relay.
    pub port: u16,
    /// `starttls` (default), `tls`, or `none` (a relay on the same host or
    /// a test server only).
    #[serde(default = "starttls")]
    pub security: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A PEM file of the certificate authority of a private relay, trusted
    /// beside the public ones.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn starttls() -> String {
    "starttls".into()
}

/// Sends raw messages over SMTP.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpSender {
    pub fn new(s: &SmtpSettings) -> Result<Self> {
        let bad = |e: lettre::transport::smtp::Error| Error::invalid("mail.smtp", e.to_string());
        let mut builder = match s.security.as_str() {
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host).map_err(bad)?,
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host).map_err(bad)?,
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
            other => return Err(Error::invalid("mail.smtp.security", format!("'{other}': starttls, tls or none"))),
        }
        .port(s.port)
        .timeout(Some(std::time::Duration::from_secs(20)));
        if let Some(ca) = &s.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| Error::invalid("mail.smtp.ca_file", format!("{}: {e}", ca.display())))?;
            let params = TlsParameters::builder(s.host.clone())
                .add_root_certificate(Certificate::from_pem(&pem).map_err(bad)?)
                .build_rustls()
                .map_err(bad)?;
            builder = match s.security.as_str() {
                "tls" => builder.tls(Tls::Wrapper(params)),
                "starttls" => builder.tls(Tls::Required(params)),
                _ => builder,
            };
        }
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Self { transport: builder.build() })
    }

    /// Sends one message; `Err((permanent, reason))` on failure, where
    /// `permanent` means that retrying cannot help (a 5xx answer, a bad
    /// address).
    async fn send_raw(&self, from: &Mailbox, to: &str, bytes: &[u8]) -> std::result::Result<(), (bool, String)> {
        let to: Mailbox = to.parse().map_err(|e| (true, format!("{e}")))?;
        let envelope = lettre::address::Envelope::new(Some(from.email.clone()), vec![to.email])
            .map_err(|e| (true, e.to_string()))?;
        self.transport.send_raw(&envelope, bytes).await.map(|_| ()).map_err(|e| (e.is_permanent(), e.to_string()))
    }
}

mod queue_row {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mail_queue")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub recipient: String,
        pub message: String,
        pub attempts: i32,
        pub next_attempt_at: DateTimeUtc,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Tries before a message is given up (≈ 2 days with [`backoff`]).
pub const MAX_ATTEMPTS: i32 = 60;

/// The delay before the next try after `attempts` failures: 5 s doubling,
/// at most one hour.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(0, 10) as u32;
    Duration::seconds((5i64 << exp).min(3600))
}

/// Queues messages in the database; [`QueuedMailer::run_worker`] sends
/// them.
pub struct QueuedMailer {
    db: DatabaseConnection,
    from: Mailbox,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    dkim: Option<Arc<DkimConfig>>,
}

impl QueuedMailer {
    pub fn new(db: DatabaseConnection, from: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let from = from.parse().map_err(|e| Error::invalid("mail.from", format!("{e}")))?;
        Ok(Self { db, from, clock, wake: Arc::new(Notify::new()), dkim: None })
    }

    /// Signs every message with `dkim`.
    pub fn with_dkim(mut self, dkim: Option<Arc<DkimConfig>>) -> Self {
        self.dkim = dkim;
        self
    }

    /// Sends what is due now; returns how many were sent.
    pub async fn deliver_due(&self, sender: &SmtpSender) -> Result<usize> {
        let now = self.clock.now();
        let depth = queue_row::Entity::find().count(&self.db).await.map_err(storage)?;
        metrics::gauge!(MAIL_QUEUE_DEPTH).set(depth as f64);
        let due = queue_row::Entity::find()
            .filter(queue_row::Column::NextAttemptAt.lte(now))
            .order_by_asc(queue_row::Column::Id)
            .limit(20)
            .all(&self.db)
            .await
            .map_err(storage)?;
        let mut sent = 0;
        for row in due {
            if !self.claim(&row, now).await? {
                continue;
            }
            match sender.send_raw(&self.from, &row.recipient, row.message.as_bytes()).await {
                Ok(()) => {
                    queue_row::Entity::delete_by_id(row.id).exec(&self.db).await.map_err(storage)?;
                    sent += 1;
                }
                Err((permanent, e)) if permanent || row.attempts + 1 >= MAX_ATTEMPTS => {
                    // Kept no longer: the log tells the operator what was lost.
                    tracing::error!(id = row.id, to = %row.recipient, attempts = row.attempts + 1, error = %e, "mail dropped");
                    queue_row::Entity::delete_by_id(row.id).exec(&self.db).await.map_err(storage)?;
                }
                Err((_, e)) => {
                    tracing::warn!(id = row.id, attempts = row.attempts + 1, error = %e, "mail not sent, will retry");
                    let next = now + backoff(row.attempts);
                    queue_row::Entity::update_many()
                        .col_expr(queue_row::Column::Attempts, Expr::value(row.attempts + 1))
                        .col_expr(queue_row::Column::NextAttemptAt, Expr::value(next))
                        .col_expr(queue_row::Column::LastError, Expr::value(e))
                        .filter(queue_row::Column::Id.eq(row.id))
                        .exec(&self.db)
                        .await
                        .map_err(storage)?;
                }
            }
        }
        Ok(sent)
    }

    /// Claims a row for a few minutes, so that another node's worker does
    /// not send it too; false when another worker was first.
    async fn claim(&self, row: &queue_row::Model, now: DateTime<Utc>) -> Result<bool> {
        let done = queue_row::Entity::update_many()
            .col_expr(queue_row::Column::NextAttemptAt, Expr::value(now + Duration::minutes(5)))
            .filter(queue_row::Column::Id.eq(row.id))
            .filter(queue_row::Column::NextAttemptAt.eq(row.next_attempt_at))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected == 1)
    }

    /// How many messages wait (for tests and metrics).
    pub async fn pending(&self) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        queue_row::Entity::find().count(&self.db).await.map_err(storage)
    }

    /// Runs forever: sends due messages when woken by a new one, or every
    /// `poll`.
    pub async fn run_worker(self: Arc<Self>, sender: SmtpSender, poll: std::time::Duration) {
        loop {
            if let Err(e) = self.deliver_due(&sender).await {
                tracing::error!(error = %e, "mail queue");
            }
            let _ = tokio::time::timeout(poll, self.wake.notified()).await;
        }
    }
}

/// Messages waiting in the queue (gauge, read at each pass of the worker).
pub const MAIL_QUEUE_DEPTH: &str = "idp_mail_queue_depth";

#[async_trait]
impl Mailer for QueuedMailer {
    async fn send(&self, mail: OutgoingMail) -> Result<()> {
        let (to, bytes) = build_message(&self.from, &mail, self.dkim.as_deref())?;
        let now = self.clock.now();
        let row = queue_row::ActiveModel {
            recipient: Set(to.to_string()),
            message: Set(String::from_utf8_lossy(&bytes).into_owned()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            last_error: Set(None),
            created_at: Set(now),
            ..Default::default()
        };
        queue_row::Entity::insert(row).exec(&self.db).await.map_err(storage)?;
        self.wake.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_french_headers_and_two_parts() {
        let from: Mailbox = "ENT Touraine-eschool <confirmation-ent@touraine-eschool.fr>".parse().unwrap();
        let mail = OutgoingMail {
            to: "parent@example.fr".into(),
            subject: "Validation de l'adresse électronique de ENT Touraine-eschool".into(),
            text: "Bonjour,\nélève".into(),
            html: Some("<p>Bonjour</p>".into()),
        };
        let (_, bytes) = build_message(&from, &mail, None).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("From: \"ENT Touraine-eschool\" <confirmation-ent@touraine-eschool.fr>"), "{text}");
        assert!(text.contains("Message-ID: <"), "{text}");
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("Content-Transfer-Encoding: quoted-printable"));
        assert!(text.contains("=C3=A9l=C3=A8ve"));
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert_eq!(backoff(0), Duration::seconds(5));
        assert_eq!(backoff(1), Duration::seconds(10));
        assert_eq!(backoff(20), Duration::seconds(3600));
    }
}
