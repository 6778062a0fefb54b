//! Memory per SSO session, as a deployment would size it: each session of
//! another person, with one service that got a ticket (the usual state of a
//! session after the first click in the ENT).
//!
//! - In memory: the growth of this process's resident memory over 100,000
//!   sessions in `MemorySessions` (the sessions, their services and the
//!   per-account index).
//! - Redis, when `IDP_REDIS_URL` is set: `MEMORY USAGE` of every key a
//!   session makes (the session, its services list, its account's index)
//!   over 10,000 sessions, under a prefix of its own, removed afterwards.
//!
//! Run: `cargo run --release -p idp-store --example session_memory`.
//! Figures: docs/performance.md.

use std::time::Duration;

use chrono::Utc;
use idp_core::ports::SessionStore;
use idp_core::session::{SessionService, SsoSession, TicketId};
use idp_store::memory::MemorySessions;
use idp_store::redis_store::{Redis, RedisSessions};

const IN_MEMORY: usize = 100_000;
const IN_REDIS: usize = 10_000;
const TTL: Duration = Duration::from_secs(3600);

fn session(i: usize) -> Result<(SsoSession, SessionService), Box<dyn std::error::Error>> {
    let now = Utc::now();
    let session = SsoSession {
        id: TicketId::new("TGT")?,
        account_id: 1_000_000 + i as i64,
        login: format!("c.martin{i}"),
        authenticated_at: now,
        last_used_at: now,
        upstream: None,
        amr: Vec::new(),
    };
    let ticket = TicketId::new("ST")?;
    let service = SessionService::cas("pronote", "https://0370001a.index-education.net/pronote/", ticket.expose());
    Ok((session, service))
}

/// Resident memory of this process, in bytes.
fn resident() -> Result<u64, Box<dyn std::error::Error>> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).ok_or("statm")?.parse()?;
    Ok(pages * 4096)
}

async fn in_memory() -> Result<(), Box<dyn std::error::Error>> {
    // The sessions are made first, so that only the store's growth counts.
    let made: Vec<_> = (0..IN_MEMORY).map(session).collect::<Result<_, _>>()?;
    let store = MemorySessions::default();
    let before = resident()?;
    for (s, service) in &made {
        store.create(s, TTL).await?;
        store.add_service(s.id.expose(), service.clone()).await?;
    }
    let after = resident()?;
    let per = (after.saturating_sub(before)) as f64 / IN_MEMORY as f64;
    println!(
        "in memory: {IN_MEMORY} sessions, resident memory +{} KiB, {per:.0} bytes per session",
        (after - before) / 1024
    );
    Ok(())
}

async fn in_redis(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let prefix = format!("idp-memory-{}:", std::process::id());
    let redis = Redis::connect(url, &prefix).await?;
    let store = RedisSessions(redis);
    let mut keys = Vec::new();
    for i in 0..IN_REDIS {
        let (s, service) = session(i)?;
        store.create(&s, TTL).await?;
        store.add_service(s.id.expose(), service).await?;
        keys.push(format!("{prefix}tgt:{}", s.id.expose()));
        keys.push(format!("{prefix}tgt:{}:svc", s.id.expose()));
        keys.push(format!("{prefix}acct-tgt:{}", s.account_id));
    }
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut total: u64 = 0;
    for key in &keys {
        let used: Option<u64> = redis::cmd("MEMORY").arg("USAGE").arg(key).query_async(&mut conn).await?;
        total += used.unwrap_or(0);
    }
    for chunk in keys.chunks(1000) {
        let _: () = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await?;
    }
    let per = total as f64 / IN_REDIS as f64;
    println!("redis: {IN_REDIS} sessions, MEMORY USAGE {} KiB, {per:.0} bytes per session", total / 1024);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    in_memory().await?;
    match std::env::var("IDP_REDIS_URL") {
        Ok(url) if !url.is_empty() => in_redis(&url).await?,
        _ => println!("redis: skipped (IDP_REDIS_URL not set)"),
    }
    Ok(())
}
