//! The server: builds the application state from the settings, binds its
//! listener, serves until shut down.

use anyhow::Context;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;

use idp_core::auth::Authenticator;
use idp_core::clock::Clock;
use idp_core::lifecycle::Lifecycle;
use idp_core::oidc::SessionEndHook;
use idp_core::ports::{MailComposer, Mailer};
use idp_core::second_factor::SecondFactor;
use idp_core::throttle::Throttle;
use idp_protocol::cas::{Cas, CasPorts};
use idp_protocol::login::LoginPipeline;
use idp_protocol::oidc::Oidc;
use idp_protocol::oidc::internal::{WithInternalServices, internal_service};
use idp_protocol::oidc::keys::Keys;
use idp_protocol::oidc::logout::BackChannelLogout;
use idp_protocol::passkeys::Passkeys;
use idp_protocol::saml_idp::SamlIdp;
use idp_protocol::saml_idp::logout::SamlLogoutHook;
use idp_protocol::saml_idp::services::WithSamlSps;
use idp_protocol::upstream::{SamlUpstreams, UpstreamPorts, Upstreams};
use idp_saml::idp::IdentityProvider;
use idp_store::audit::TracingAudit;
use idp_store::mail::{OutboxMailer, QueuedMailer, SmtpSender, dkim_config};
use idp_store::outbound::HttpOutbound;
use idp_web::AppState;
use idp_web::compte::mails::MailTemplates;
use idp_web::config::WebConfig;
use idp_web::views::Views;

use crate::settings::Settings;
use crate::stores::{Stores, StoresReadiness, redact};

/// The name of the decoy-question key among the deployment secrets.
const DECOY_KEY: &str = "decoy_key";
/// The name of the key that signs the CSRF tokens of forms.
const CSRF_KEY: &str = "csrf_key";

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    /// The listener of `/metrics` alone, when it has one.
    metrics: Option<(TcpListener, axum::Router)>,
    pub stores: Stores,
    public_url: url::Url,
    /// Whether passkeys are offered, and why not.
    passkeys: String,
    database: String,
    limits: crate::http::ConnectionLimits,
    /// Single logout messages sent in the background, waited for at
    /// shutdown.
    outbound: Arc<HttpOutbound>,
    /// The e-mail queue and a sender of its own, for a last delivery at
    /// shutdown.
    mail_queue: Option<(Arc<QueuedMailer>, SmtpSender)>,
}

/// The process-wide Prometheus recorder (a recorder can only be installed
/// once per process; tests build several applications), with the HELP
/// text of every metric and the buckets of the latency histogram.
fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let durations = metrics_exporter_prometheus::Matcher::Full(idp_web::access::REQUEST_DURATION.to_owned());
            let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets_for_metric(durations, &DURATION_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            describe_metrics();
            Some(handle)
        })
        .clone()
}

/// Seconds: from a static file to a login with costly hashing waiting in
/// the queue.
const DURATION_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The HELP line of every metric the process records.
fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        idp_web::access::REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by method, matched route and status."
    );
    describe_counter!("idp_logins_total", "Login form submissions, by outcome.");
    describe_counter!(
        "idp_service_tickets_total",
        "CAS service tickets issued; sso=true when from an existing session."
    );
    describe_counter!(
        "idp_ticket_validations_total",
        "CAS ticket validations, by endpoint and result (success or CAS error code)."
    );
    describe_counter!("idp_single_logout_total", "Single logout messages (CAS and OIDC back-channel), by result.");
    describe_counter!("idp_oidc_token_requests_total", "OIDC token endpoint requests, by grant type and result.");
    describe_counter!(
        "idp_connections_refused_total",
        "Connections refused with a 503 because server.max_connections were open."
    );
    describe_gauge!(idp_store::hashing::HASHING_IN_FLIGHT, "Password hashes running or waiting for a slot.");
    describe_histogram!(
        idp_store::hashing::HASHING_WAIT,
        Unit::Seconds,
        "Time a password hash waited for a free slot of the hashing pool."
    );
    describe_counter!(idp_store::hashing::HASHING_REFUSED, "Password hashes refused at once: the queue was full.");
    describe_gauge!(idp_store::mail::MAIL_QUEUE_DEPTH, "E-mails waiting in the SMTP queue.");
    describe_counter!(idp_store::SESSIONS_OPENED, "SSO sessions opened.");
    describe_counter!(
        idp_store::SESSIONS_ENDED,
        "SSO sessions ended (logout, reset, new login), not counting time-outs."
    );
}

/// The outbound HTTP client of the settings.
pub fn outbound(settings: &Settings) -> anyhow::Result<HttpOutbound> {
    HttpOutbound::with_extra_ca(
        Duration::from_secs(settings.outbound_timeout_seconds),
        settings.outbound_extra_ca_file.as_deref(),
    )
    .context("cannot build the HTTP client")
}

/// The CAS side with its session-end hooks (OIDC back-channel logout, SAML
/// single logout), the OIDC signing keys, the issuer and our SAML identity
/// provider: what the server serves with, and what the CLI needs to end
/// sessions with single logout.
pub async fn build_cas(
    settings: &Settings,
    stores: &Stores,
    clock: Arc<dyn Clock>,
    outbound: Arc<HttpOutbound>,
) -> anyhow::Result<(Arc<Cas>, Arc<Keys>, String, IdentityProvider)> {
    let public_url = settings.public_url().map_err(anyhow::Error::msg)?;
    let issuer = public_url.as_str().trim_end_matches('/').to_owned();
    let keys = Arc::new(Keys::new(stores.keys.clone(), clock.clone(), settings.oidc.longest_signed()));
    keys.ensure().await.context("cannot create the OIDC signing keys")?;
    let back_channel = BackChannelLogout {
        clients: stores.clients.clone(),
        pseudonyms: stores.pseudonyms.clone(),
        store: stores.oidc.clone(),
        keys: keys.clone(),
        outbound: outbound.clone(),
        clock: clock.clone(),
        issuer: issuer.clone(),
    };
    let cipher = crate::stores::key_cipher(settings)?;
    let idp = crate::saml::identity_provider(&settings.saml_idp, &stores.db, &cipher, &*clock, &issuer)
        .await
        .context("cannot read or make the SAML identity provider key")?;
    let saml_logout = SamlLogoutHook {
        idp: idp.clone(),
        sps: stores.saml_sps.clone(),
        pending: stores.ephemeral.clone(),
        outbound: outbound.clone(),
        clock: clock.clone(),
    };
    let ports = CasPorts {
        accounts: stores.accounts.clone(),
        // The OIDC authorization endpoint is an internal service, so
        // that CAS logs in for it (see idp_protocol::oidc::internal).
        // So is each SAML SP's login (see idp_protocol::saml_idp::services).
        services: Arc::new(WithSamlSps {
            inner: Arc::new(WithInternalServices {
                inner: stores.services.clone(),
                internal: internal_service(&issuer)?,
            }),
            sps: stores.saml_sps.clone(),
            public_base: issuer.clone(),
        }),
        tickets: stores.tickets.clone(),
        sessions: stores.sessions.clone(),
        outbound,
        audit: Arc::new(TracingAudit),
        clock,
        proxies: stores.proxies.clone(),
        pseudonyms: stores.pseudonyms.clone(),
    };
    let hooks: Vec<Arc<dyn SessionEndHook>> = vec![Arc::new(back_channel), Arc::new(saml_logout)];
    let cas = Arc::new(Cas::new(ports, settings.session_policy(), hooks));
    Ok((cas, keys, issuer, idp))
}

/// The upstream identity providers, over the stores and the outbound HTTP.
fn upstreams(
    settings: &Settings,
    stores: &Stores,
    outbound: Arc<HttpOutbound>,
    clock: Arc<dyn Clock>,
    public_base: &str,
) -> Upstreams {
    let ports = UpstreamPorts {
        outbound,
        ephemeral: stores.ephemeral.clone(),
        accounts: stores.accounts.clone(),
        audit: Arc::new(TracingAudit),
        clock,
    };
    Upstreams::new(settings.upstreams.clone(), ports, public_base)
}

impl Application {
    /// Opens the stores, builds the router and binds `settings.bind`
    /// (port 0 picks a free port: see [`Application::port`]).
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        settings.check_serving().map_err(anyhow::Error::msg)?;
        let public_url = settings.public_url().map_err(anyhow::Error::msg)?;
        let stores = Stores::open(settings, clock.clone()).await?;
        std::fs::create_dir_all(settings.outbox_dir())
            .with_context(|| format!("cannot create the outbox {}", settings.outbox_dir().display()))?;
        let audit = Arc::new(TracingAudit);
        let outbound = Arc::new(outbound(settings)?);
        let (cas, keys, issuer, idp) = build_cas(settings, &stores, clock.clone(), outbound.clone()).await?;
        let saml_idp =
            Arc::new(SamlIdp::new(idp, &issuer, stores.saml_sps.clone(), cas.clone(), stores.ephemeral.clone()));
        let upstreams = upstreams(settings, &stores, outbound.clone(), clock.clone(), &issuer);
        let cipher = crate::stores::key_cipher(settings)?;
        let sps =
            crate::saml::service_providers(&settings.upstreams, &stores.db, &cipher, &*outbound, &*clock, &issuer)
                .await?;
        let saml = Arc::new(SamlUpstreams::new(sps, stores.ephemeral.clone(), clock.clone()));
        crate::saml::spawn_metadata_refresh(settings.upstreams.clone(), outbound.clone(), clock.clone(), saml.clone());
        let upstreams = upstreams.with_saml(saml);
        let oidc = Oidc {
            cas: cas.clone(),
            clients: stores.clients.clone(),
            store: stores.oidc.clone(),
            keys,
            issuer,
            lifetimes: settings.oidc,
            cgu_version: settings.cgu_version.clone(),
            security: stores.security.clone(),
            pending: stores.ephemeral.clone(),
        };
        let auth = Authenticator {
            accounts: stores.accounts.clone(),
            hashing: stores.hashing.clone(),
            throttle: Throttle::new(stores.limiter.clone(), settings.throttle),
            audit: audit.clone(),
            clock: clock.clone(),
        };
        let views =
            Views::new(&settings.theme, settings.theme_dir.clone(), &settings.site_name).map_err(anyhow::Error::msg)?;
        let views = Arc::new(views.with_texts(&settings.page_texts().map_err(anyhow::Error::msg)?));
        let dkim = settings.mail.dkim.as_ref().map(dkim_config).transpose().context("invalid DKIM settings")?;
        let mut mail_queue = None;
        let mailer: Arc<dyn Mailer> = match &settings.mail.smtp {
            Some(smtp) => {
                let sender = SmtpSender::new(smtp).context("invalid SMTP settings")?;
                let queue = Arc::new(
                    QueuedMailer::new(stores.db.clone(), &settings.mail.from, clock.clone())
                        .context("invalid mail.from")?
                        .with_dkim(dkim),
                );
                let poll = Duration::from_secs(settings.mail.retry_poll_seconds.max(1));
                tokio::spawn(queue.clone().run_worker(sender, poll));
                mail_queue = Some((queue.clone(), SmtpSender::new(smtp).context("invalid SMTP settings")?));
                queue
            }
            None => Arc::new(
                OutboxMailer::new(settings.outbox_dir(), &settings.mail.from)
                    .context("invalid mail.from")?
                    .with_dkim(dkim),
            ),
        };
        let mut accounts_policy = settings.accounts.clone();
        if accounts_policy.decoy_key.is_none() {
            // Without a configured key, the one the first node made.
            let key = idp_store::db::server_secret(&stores.db, DECOY_KEY, clock.now())
                .await
                .context("cannot read or make the decoy-question key")?;
            accounts_policy.decoy_key = Some(key.expose().to_owned());
        }
        // Every node signs form tokens with the same key: a form shown by
        // one node is accepted by the others.
        let csrf_key = idp_store::db::server_secret(&stores.db, CSRF_KEY, clock.now())
            .await
            .context("cannot read or make the form-signing key")?;
        let console = Arc::new(stores.console(clock.clone()));
        let lifecycle = Lifecycle {
            accounts: stores.accounts.clone(),
            security: stores.security.clone(),
            ephemeral: stores.ephemeral.clone(),
            hashing: stores.hashing.clone(),
            limiter: stores.limiter.clone(),
            throttle: Throttle::new(stores.limiter.clone(), settings.throttle),
            mailer,
            composer: Arc::new(MailTemplates { views: views.clone(), public_url: public_url.clone() }),
            audit,
            clock,
            policy: accounts_policy,
            passwords: settings.password_policy.clone().for_site(&settings.site_name),
            cgu_version: settings.cgu_version.clone(),
        };
        let config = WebConfig {
            public_url: public_url.clone(),
            theme: settings.theme.clone(),
            theme_dir: settings.theme_dir.clone(),
            site_name: settings.site_name.clone(),
            profiles: settings.login.profiles.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            metrics_elsewhere: settings.server.metrics_bind.is_some(),
            upstream_labels: settings.upstreams.iter().map(|u| (u.id.clone(), u.label.clone())).collect(),
            csrf_key,
        };
        let handle = metrics_handle();
        let mail = (lifecycle.mailer.clone(), lifecycle.composer.clone());
        let second_factor = Arc::new(second_factor(&stores, mail, settings, lifecycle.clock.clone()));
        let lifecycle = Arc::new(lifecycle);
        let (passkeys, passkeys_line) = passkeys(&public_url, settings, second_factor.clone());
        let login = LoginPipeline::new(
            cas.clone(),
            Arc::new(auth),
            lifecycle.clone(),
            Arc::new(upstreams),
            (second_factor.clone(), passkeys.clone()),
        );
        let render: Arc<dyn Fn() -> String + Send + Sync> =
            Arc::new(move || handle.as_ref().map(|h| h.render()).unwrap_or_default());
        let state = AppState {
            cas,
            login: Arc::new(login),
            oidc: Arc::new(oidc),
            views,
            config: Arc::new(config),
            readiness: Arc::new(StoresReadiness(stores.clone())),
            metrics: render.clone(),
            lifecycle,
            console,
            second_factor,
            passkeys,
            saml_idp,
        };
        let listener =
            TcpListener::bind(&settings.bind).await.with_context(|| format!("cannot listen on {}", settings.bind))?;
        let metrics = match &settings.server.metrics_bind {
            Some(bind) => {
                let listener =
                    TcpListener::bind(bind).await.with_context(|| format!("cannot listen on {bind} (metrics)"))?;
                Some((listener, idp_web::health::metrics_router(render)))
            }
            None => None,
        };
        Ok(Application {
            listener,
            router: idp_web::router(state),
            metrics,
            stores,
            public_url,
            passkeys: passkeys_line,
            database: redact(&settings.database_url()),
            limits: crate::http::ConnectionLimits {
                header_read_timeout: Duration::from_secs(settings.server.header_read_timeout_secs),
                max_connections: settings.server.max_connections,
                drain: Duration::from_secs(settings.server.shutdown_drain_secs),
            },
            outbound,
            mail_queue,
        })
    }

    /// The whole HTTP application, to call in-process (tests use
    /// `tower::ServiceExt::oneshot` on it) without the listener.
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The port of the metrics listener, when `server.metrics_bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok()).map(|a| a.port())
    }

    /// One line per fact an operator needs at start.
    pub fn report(&self) -> Vec<String> {
        let addr = self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        vec![
            format!("listening on http://{addr}"),
            format!("public URL: {}", self.public_url),
            format!("passkeys: {}", self.passkeys),
            format!("database: {}", self.database),
            format!("ticket registry: {}", self.stores.ticket_store),
            match self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok()) {
                Some(addr) => format!("metrics: http://{addr}/metrics"),
                None => "metrics: /metrics, for loopback and trusted proxies".to_owned(),
            },
        ]
    }

    /// Serves until `shutdown` completes, then stops accepting and drains,
    /// `server.shutdown_drain_secs` at most in all: requests in flight end,
    /// single logout messages already sent in the background are waited
    /// for, and the e-mails due in the queue are given one last delivery
    /// (those left stay queued for the next start).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let drain = self.limits.drain;
        // Every listener stops on the same signal, which carries the end of
        // the drain.
        let (stop, stopped) = tokio::sync::watch::channel(None::<tokio::time::Instant>);
        let signal = |mut stopped: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>| async move {
            let _ = stopped.wait_for(Option::is_some).await;
        };
        let metrics = self.metrics.map(|(listener, router)| {
            tokio::spawn(crate::http::serve(listener, router, self.limits, signal(stopped.clone())))
        });
        let main = crate::http::serve(self.listener, self.router, self.limits, signal(stopped));
        let trigger = async move {
            shutdown.await;
            let _ = stop.send(Some(tokio::time::Instant::now() + drain));
            stop
        };
        let ((), stop) = tokio::join!(main, trigger);
        let deadline = (*stop.borrow()).unwrap_or_else(tokio::time::Instant::now);
        self.outbound.drain(deadline.saturating_duration_since(tokio::time::Instant::now())).await;
        if let Some((queue, sender)) = &self.mail_queue {
            match tokio::time::timeout_at(deadline, queue.deliver_due(sender)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "mail queue at shutdown"),
                Err(_) => tracing::warn!("mail queue at shutdown: left for the next start"),
            }
        }
        if let Some(metrics) = metrics {
            metrics.await.context("metrics listener")?;
        }
        Ok(())
    }
}

/// The passkeys of the public URL's relying party, and the line of the
/// start report saying whether they are offered (not with an IP address
/// as host: browsers refuse it as a relying party id).
fn passkeys(public_url: &url::Url, settings: &Settings, mfa: Arc<SecondFactor>) -> (Arc<Passkeys>, String) {
    let (webauthn, line) = match idp_protocol::passkeys::relying_party(public_url, &settings.site_name) {
        Ok(webauthn) => (Some(webauthn), format!("offered, relying party {}", public_url.host_str().unwrap_or(""))),
        Err(why) => (None, format!("not offered: {why}")),
    };
    (Arc::new(Passkeys::new(webauthn, mfa)), line)
}

/// The second-factor service over the stores, sending its notices with
/// `mailer` and `composer` (those of the account flows).
pub(crate) fn second_factor(
    stores: &Stores,
    (mailer, composer): (Arc<dyn Mailer>, Arc<dyn MailComposer>),
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> SecondFactor {
    SecondFactor {
        repo: stores.second_factors.clone(),
        accounts: stores.accounts.clone(),
        ephemeral: stores.ephemeral.clone(),
        admins: stores.admins.clone(),
        security: stores.security.clone(),
        throttle: Throttle::new(stores.limiter.clone(), settings.throttle),
        mailer,
        composer,
        audit: Arc::new(TracingAudit),
        clock,
        policy: settings.mfa.clone(),
        issuer: settings.site_name.clone(),
    }
}

/// The second-factor service of a CLI command: its e-mails go to the
/// outbox, or to the SMTP queue that the running server sends.
pub(crate) fn cli_second_factor(
    settings: &Settings,
    stores: &Stores,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<SecondFactor> {
    let public_url = settings.public_url().map_err(anyhow::Error::msg)?;
    let views =
        Views::new(&settings.theme, settings.theme_dir.clone(), &settings.site_name).map_err(anyhow::Error::msg)?;
    let composer: Arc<dyn MailComposer> = Arc::new(MailTemplates { views: Arc::new(views), public_url });
    let dkim = settings.mail.dkim.as_ref().map(dkim_config).transpose().context("invalid DKIM settings")?;
    let mailer: Arc<dyn Mailer> = match &settings.mail.smtp {
        Some(_) => Arc::new(
            QueuedMailer::new(stores.db.clone(), &settings.mail.from, clock.clone())
                .context("invalid mail.from")?
                .with_dkim(dkim),
        ),
        None => Arc::new(
            OutboxMailer::new(settings.outbox_dir(), &settings.mail.from).context("invalid mail.from")?.with_dkim(dkim),
        ),
    };
    Ok(second_factor(stores, (mailer, composer), settings, clock))
}
