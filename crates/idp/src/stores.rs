//! Wiring of the adapters chosen by the settings: the one place that knows
//! which adapter implements which port.

use anyhow::Context;
use async_trait::async_trait;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

use idp_core::clock::Clock;
use idp_core::oidc::{ClientRegistry, KeyStore, OidcStore};
use idp_core::ports::{
    AccountRepository, AccountSecurityRepository, EphemeralStore, PasswordHashing, RateLimiter, ServiceRegistry,
    SessionStore, TicketRegistry,
};
use idp_core::proxy::ProxyTicketStore;
use idp_core::pseudonym::PseudonymStore;
use idp_store::accounts::SqlAccounts;
use idp_store::admin::SqlAdmins;
use idp_store::at_rest::KeyCipher;
use idp_store::changes::Changes;
use idp_store::clients::{SqlClients, SqlKeys};
use idp_store::ephemeral::{MemoryEphemeral, RedisEphemeral};
use idp_store::hashing::BlockingHasher;
use idp_store::memory::{MemoryRateLimiter, MemorySessions, MemoryTickets};
use idp_store::oidc_store::{MemoryOidcStore, RedisOidcStore};
use idp_store::proxy::{MemoryProxyTickets, RedisProxyTickets};
use idp_store::pseudonyms::SqlPseudonyms;
use idp_store::redis_store::{Redis, RedisRateLimiter, RedisSessions, RedisTickets};
use idp_store::security::SqlAccountSecurity;
use idp_store::services::SqlServices;

use crate::settings::Settings;

/// The stores of things with a lifetime, and the name of their kind.
type Ephemeral =
    (Arc<dyn TicketRegistry>, Arc<dyn SessionStore>, Arc<dyn RateLimiter>, Arc<dyn EphemeralStore>, &'static str);

/// The stores of one process.
#[derive(Clone)]
pub struct Stores {
    pub db: DatabaseConnection,
    pub accounts: Arc<dyn AccountRepository>,
    pub services: Arc<dyn ServiceRegistry>,
    pub tickets: Arc<dyn TicketRegistry>,
    pub sessions: Arc<dyn SessionStore>,
    pub limiter: Arc<dyn RateLimiter>,
    pub hashing: Arc<dyn PasswordHashing>,
    /// CAS proxy-granting and proxy tickets (memory or Redis, as tickets).
    pub proxies: Arc<dyn ProxyTicketStore>,
    /// Per-service pseudonymous identifiers (database).
    pub pseudonyms: Arc<dyn PseudonymStore>,
    /// OIDC clients and signing keys (database).
    pub clients: Arc<dyn ClientRegistry>,
    pub keys: Arc<dyn KeyStore>,
    /// OIDC codes, grants and consents (memory or Redis, as tickets).
    pub oidc: Arc<dyn OidcStore>,
    /// Records of the account flows (activation attempts, codes).
    pub ephemeral: Arc<dyn EphemeralStore>,
    /// Secret questions, validated e-mail, login history.
    pub security: Arc<dyn AccountSecurityRepository>,
    /// Help desk roles, search and audit trail (database).
    pub admins: Arc<dyn idp_core::admin::AdminRepository>,
    /// TOTP secrets, recovery codes and passkeys (database).
    pub second_factors: Arc<dyn idp_core::second_factor::SecondFactorRepository>,
    /// SAML service providers of our identity provider (database).
    pub saml_sps: Arc<dyn idp_core::saml_sp::SamlSpRegistry>,
    /// "in-memory" or "redis", for the start-up report.
    pub ticket_store: &'static str,
}

impl Stores {
    /// The help desk's operations on these stores.
    pub fn console(&self, clock: Arc<dyn Clock>) -> idp_core::admin::Console {
        idp_core::admin::Console {
            admins: self.admins.clone(),
            accounts: self.accounts.clone(),
            sessions: self.sessions.clone(),
            hashing: self.hashing.clone(),
            limiter: self.limiter.clone(),
            ephemeral: self.ephemeral.clone(),
            clock,
        }
    }

    /// Connects to the database (applying migrations) and to Redis when
    /// configured.
    pub async fn open(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Stores> {
        let url = settings.database_url();
        let db =
            idp_store::db::connect(&url).await.with_context(|| format!("cannot open the database {}", redact(&url)))?;
        idp_store::db::migrate(&db).await.context("cannot apply the database migrations")?;
        let mut proxies: Arc<dyn ProxyTicketStore> = Arc::new(MemoryProxyTickets::default());
        let mut oidc: Arc<dyn OidcStore> = Arc::new(MemoryOidcStore::default());
        let (tickets, sessions, limiter, ephemeral, ticket_store): Ephemeral = match &settings.redis_url {
            Some(url) => {
                let redis = Redis::connect(url, &settings.redis_prefix)
                    .await
                    .with_context(|| format!("cannot connect to Redis at {}", redact(url)))?;
                proxies = Arc::new(RedisProxyTickets(redis.clone()));
                oidc = Arc::new(RedisOidcStore(redis.clone()));
                (
                    Arc::new(RedisTickets(redis.clone())),
                    Arc::new(RedisSessions(redis.clone())),
                    Arc::new(RedisRateLimiter(redis.clone())),
                    Arc::new(RedisEphemeral(redis)),
                    "redis",
                )
            }
            None => (
                Arc::new(MemoryTickets::default()),
                Arc::new(MemorySessions::default()),
                Arc::new(MemoryRateLimiter::default()),
                Arc::new(MemoryEphemeral::default()),
                "in-memory",
            ),
        };
        let cipher = Arc::new(key_cipher(settings)?);
        let concurrency = settings
            .hashing_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
        let queue = settings.hashing_queue.unwrap_or(concurrency * 32);
        let hashing =
            Arc::new(BlockingHasher::new(settings.argon2, concurrency, queue).context("invalid argon2 settings")?);
        // One watch of the database for the per-node caches of accounts,
        // services, pseudonyms, OIDC clients and signing keys.
        let changes = Arc::new(Changes::new(db.clone(), &url));
        Ok(Stores {
            accounts: Arc::new(SqlAccounts::new(db.clone(), clock.clone(), changes.clone())),
            services: Arc::new(SqlServices::new(db.clone(), clock.clone(), changes.clone())),
            pseudonyms: Arc::new(SqlPseudonyms::new(db.clone(), clock.clone(), changes.clone())),
            proxies,
            clients: Arc::new(SqlClients::new(db.clone(), changes.clone())),
            keys: Arc::new(SqlKeys::new(db.clone(), cipher.clone(), changes.clone())),
            second_factors: Arc::new(idp_store::second_factor::SqlSecondFactors::new(db.clone(), cipher)),
            oidc,
            security: Arc::new(SqlAccountSecurity::new(db.clone())),
            admins: Arc::new(SqlAdmins::new(db.clone())),
            saml_sps: Arc::new(idp_store::saml_sps::SqlSamlSps::new(db.clone(), clock.clone(), changes.clone())),
            ephemeral,
            db,
            tickets,
            sessions,
            limiter,
            hashing,
            ticket_store,
        })
    }
}

/// The key that encrypts the OIDC signing keys in the database: the
/// configured file, which must exist, or the default one, made when missing.
pub(crate) fn key_cipher(settings: &Settings) -> anyhow::Result<KeyCipher> {
    let (path, configured) = settings.key_encryption_key_file();
    let cipher = if configured { KeyCipher::from_file(&path) } else { KeyCipher::load_or_create(&path) };
    cipher.with_context(|| format!("cannot use the key-encryption key {}", path.display()))
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// `/readyz`: the database and the ticket store answer.
pub struct StoresReadiness(pub Stores);

#[async_trait]
impl idp_web::state::Readiness for StoresReadiness {
    async fn check(&self) -> Result<(), String> {
        idp_store::db::ping(&self.0.db).await.map_err(|_| "database".to_owned())?;
        self.0.tickets.ping().await.map_err(|_| "ticket store".to_owned())
    }
}
