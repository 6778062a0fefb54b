//! argon2id on threads of its own, with a semaphore so that a burst of
//! logins cannot run unbounded CPU work at once (each hash takes tens of
//! milliseconds and ~19 MiB of memory), and a bounded queue behind it: when
//! the queue is full the request fails at once (a 503 page) instead of
//! waiting without limit.
//!
//! The threads run at a lower priority (nice 10) than the async runtime:
//! under a flood of logins, the CPU goes first to the requests that need
//! no hash (single sign-on, validation), and the hashes take what is left.
//! They are a fixed few, rather than tokio's blocking pool, whose changing
//! threads each kept a ~19 MiB allocator arena after a hash (900 MB of
//! resident memory after a flood).

use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

use idp_core::password::{Argon2Hasher, Argon2Params};
use idp_core::ports::PasswordHashing;
use idp_core::secret::Secret;
use idp_core::{Error, Result};

/// The [`PasswordHashing`] adapter.
pub struct BlockingHasher {
    /// Jobs for the hashing threads, which end when this is dropped.
    jobs: Mutex<mpsc::Sender<Job>>,
    permits: Arc<Semaphore>,
    /// Hashes running or waiting.
    in_flight: Arc<AtomicUsize>,
    /// The most hashes running or waiting at once.
    limit: usize,
    refusals: Refusals,
}

/// Hashes running or waiting (gauge).
pub const HASHING_IN_FLIGHT: &str = "idp_hashing_in_flight";
/// Time a hash waited for a free slot (histogram, seconds).
pub const HASHING_WAIT: &str = "idp_hashing_wait_seconds";
/// Hashes refused because the queue was full (counter).
pub const HASHING_REFUSED: &str = "idp_hashing_refused_total";

/// Takes a place in the queue; gives it back when dropped.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        let before = self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(HASHING_IN_FLIGHT).set(before.saturating_sub(1) as f64);
    }
}

impl BlockingHasher {
    /// At most `concurrency` hashes run at once (default: the number of
    /// CPUs); at most `queue` more wait their turn, and any beyond fail at
    /// once.
    pub fn new(params: Argon2Params, concurrency: usize, queue: usize) -> Result<Self> {
        let concurrency = concurrency.max(1);
        let hasher = Arc::new(Argon2Hasher::new(params)?);
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..concurrency {
            let (hasher, receiver) = (hasher.clone(), receiver.clone());
            std::thread::Builder::new()
                .name(format!("idp-hash-{i}"))
                .spawn(move || hashing_thread(&hasher, &receiver))
                .map_err(|e| Error::Hashing(e.into()))?;
        }
        Ok(Self {
            jobs: Mutex::new(jobs),
            permits: Arc::new(Semaphore::new(concurrency)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            limit: concurrency + queue,
            refusals: Refusals::new(),
        })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&Argon2Hasher) -> T + Send + 'static) -> Result<T> {
        let place = Place(self.in_flight.clone());
        let before = place.0.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!(HASHING_IN_FLIGHT).set((before + 1) as f64);
        if before >= self.limit {
            self.refusals.one();
            return Err(Error::Overloaded);
        }
        let waiting = Instant::now();
        let _permit = self.permits.acquire().await.map_err(|e| Error::Hashing(e.into()))?;
        metrics::histogram!(HASHING_WAIT).record(waiting.elapsed().as_secs_f64());
        // The permit guarantees a free thread: the job starts at once.
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |h| {
            let _ = done.send(f(h));
        });
        crate::memory::lock(&self.jobs).send(job).map_err(|_| Error::Hashing("the hashing threads ended".into()))?;
        result.await.map_err(|_| Error::Hashing("a hashing thread ended".into()))
    }
}

/// A hash to run, and where its result goes.
type Job = Box<dyn FnOnce(&Argon2Hasher) + Send>;

/// Runs hashes until the [`BlockingHasher`] is dropped.
fn hashing_thread(hasher: &Argon2Hasher, jobs: &Mutex<mpsc::Receiver<Job>>) {
    // On Linux the nice value is per thread (setpriority(2)): this one only.
    if let Err(e) = rustix::process::setpriority_process(None, 10) {
        tracing::warn!(error = %e, "cannot lower the priority of a hashing thread");
    }
    loop {
        let job = crate::memory::lock(jobs).recv();
        match job {
            Ok(job) => job(hasher),
            Err(_) => return,
        }
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

    fn refuse_if_full(&self) -> Result<()> {
        if self.in_flight.load(Ordering::Acquire) >= self.limit {
            self.refusals.one();
            return Err(Error::Overloaded);
        }
        Ok(())
    }
}

/// Refusals of a full queue: counted, and summed up in one log line every
/// [`REFUSALS_LOGGED_EVERY`] at most rather than one per request (a flood
/// would otherwise flood the log too).
struct Refusals {
    since_logged: AtomicU64,
    /// Seconds since `start` from which the next line may be written.
    next_line_at: AtomicU64,
    start: Instant,
}

const REFUSALS_LOGGED_EVERY: Duration = Duration::from_secs(10);

impl Refusals {
    fn new() -> Self {
        Refusals { since_logged: AtomicU64::new(0), next_line_at: AtomicU64::new(0), start: Instant::now() }
    }

    fn one(&self) {
        metrics::counter!(HASHING_REFUSED).increment(1);
        self.since_logged.fetch_add(1, Ordering::Relaxed);
        let now = self.start.elapsed().as_secs();
        let due = self.next_line_at.load(Ordering::Relaxed);
        let next = now + REFUSALS_LOGGED_EVERY.as_secs();
        // One thread wins the line; the others only count.
        if now >= due && self.next_line_at.compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            let refused = self.since_logged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                refused,
                "CORE0011 the password hashing queue is full: logins refused at once with a 503 \
                 (idp_hashing_refused_total counts them)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_fails_at_once_instead_of_waiting() {
        let params = Argon2Params { memory_kib: 8, iterations: 1, parallelism: 1 };
        let hasher = Arc::new(BlockingHasher::new(params, 1, 0).unwrap());
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = hasher.clone();
        let running = tokio::spawn(async move {
            busy.run(move |_| {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
            })
            .await
        });
        started_rx.await.unwrap();
        assert!(matches!(hasher.refuse_if_full(), Err(Error::Overloaded)));
        let refused = hasher.verify(Secret::new("x"), None).await;
        assert!(matches!(refused, Err(Error::Overloaded)), "{refused:?}");
        release_tx.send(()).unwrap();
        running.await.unwrap().unwrap();
        // The place is given back: the next hash runs.
        assert!(hasher.refuse_if_full().is_ok());
        assert!(!hasher.verify(Secret::new("x"), None).await.unwrap());
    }
}
