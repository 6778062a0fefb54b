//! Pseudonymous identifiers: a service may receive, instead of the login, a
//! random identifier stored for the (service, account) pair — the same at
//! each login, different for each service — so that third-party publishers
//! never learn who a minor is.

use async_trait::async_trait;

use crate::Result;
use crate::service::ServiceId;

/// Stored pseudonyms (in the database: they must outlive every session).
#[async_trait]
pub trait PseudonymStore: Send + Sync {
    /// The pseudonym of `account_id` under `key` (at most 64 bytes). When
    /// there is none yet, `candidate` becomes it; of two nodes racing, both
    /// get the same stored value. A CAS service's key is its id; other
    /// users of pseudonyms (the OIDC subjects) use keys with a `:`, which
    /// no service id has.
    async fn get_or_create_keyed(&self, key: &str, account_id: i64, candidate: String) -> Result<String>;

    /// The pseudonym of `account_id` for `service`.
    async fn get_or_create(&self, service: &ServiceId, account_id: i64, candidate: String) -> Result<String> {
        self.get_or_create_keyed(service.as_str(), account_id, candidate).await
    }
}

/// A fresh pseudonym: 32 characters from the OS CSPRNG (≈ 190 bits), so it
/// cannot be derived from the login nor linked across services.
pub fn new_pseudonym() -> Result<String> {
    crate::secret::random_token(32)
}
