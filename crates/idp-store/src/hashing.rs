//! argon2id on tokio's blocking pool, with a semaphore so that a burst of
//! logins cannot queue unbounded CPU work (each hash takes tens of
//! milliseconds and ~19 MiB of memory).

use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::Semaphore;

use idp_core::password::{Argon2Hasher, Argon2Params};
use idp_core::ports::PasswordHashing;
use idp_core::secret::Secret;
use idp_core::{Error, Result};

/// The [`PasswordHashing`] adapter.
pub struct BlockingHasher {
    hasher: Arc<Argon2Hasher>,
    permits: Arc<Semaphore>,
}

impl BlockingHasher {
    /// At most `concurrency` hashes run at once (default: the number of
    /// CPUs); the others wait their turn.
    pub fn new(params: Argon2Params, concurrency: usize) -> Result<Self> {
        Ok(Self { hasher: Arc::new(Argon2Hasher::new(params)?), permits: Arc::new(Semaphore::new(concurrency.max(1))) })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&Argon2Hasher) -> T + Send + 'static) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(|e| Error::Hashing(e.into()))?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || f(&hasher)).await.map_err(|e| Error::Hashing(e.into()))
    }
}

#[async_trait]
impl PasswordHashing for BlockingHasher {
    async fn hash(&self, password: Secret) -> Result<String> {
        self.run(move |h| h.hash(&password)).await?
    }

    async fn verify(&self, password: Secret, hash: Option<String>) -> Result<bool> {
        self.run(move |h| h.verify(&password, hash.as_deref())).await
    }
}
