//! Benchmarks of the CAS hot paths, on the in-memory adapters and a SQLite
//! file in WAL mode (the embedded default): issuing a service ticket from an
//! SSO session, validating it (take once + account + service lookups + XML),
//! the whole single sign-on round as a browser and a service make it
//! (session + account, service match, ticket, validation, XML), rendering
//! the XML alone, and the argon2id verification a login costs.
//!
//! Run: `cargo bench -p idp-protocol --bench cas`. Figures and the machine
//! they were measured on: docs/performance.md.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};

use idp_core::account::{AccountState, Login, NewAccount, Profile};
use idp_core::clock::SystemClock;
use idp_core::password::{Argon2Hasher, Argon2Params};
use idp_core::ports::{AuditEvent, AuditLog, Outbound};
use idp_core::secret::Secret;
use idp_core::service::{Service, ServiceId, ServiceUrl, UrlPattern};
use idp_core::session::SessionPolicy;
use idp_protocol::cas::response::{self, Attributes};
use idp_protocol::cas::validate::ValidateParams;
use idp_protocol::cas::{Cas, CasPorts};
use idp_store::accounts::SqlAccounts;
use idp_store::changes::Changes;
use idp_store::memory::{MemorySessions, MemoryTickets};
use idp_store::proxy::MemoryProxyTickets;
use idp_store::pseudonyms::SqlPseudonyms;
use idp_store::services::SqlServices;

struct NoAudit;
impl AuditLog for NoAudit {
    fn record(&self, _: AuditEvent) {}
}
struct NoOutbound;
#[async_trait::async_trait]
impl Outbound for NoOutbound {
    fn post_form_in_background(&self, _: String, _: Vec<(String, String)>) {}
    async fn get_status(&self, _: &str) -> idp_core::Result<u16> {
        Ok(404)
    }
    async fn get_text(&self, _: &str) -> idp_core::Result<(u16, String)> {
        Ok((404, String::new()))
    }
    async fn call(&self, _: idp_core::ports::HttpCall) -> idp_core::Result<idp_core::ports::HttpAnswer> {
        Ok(idp_core::ports::HttpAnswer { status: 404, headers: Vec::new(), body: Vec::new() })
    }
}

async fn setup(services: usize, dir: &std::path::Path) -> (Cas, idp_core::session::SsoSession, ServiceUrl, Service) {
    let url = format!("sqlite://{}?mode=rwc", dir.join("idp.db").display());
    let db = idp_store::db::connect(&url).await.unwrap();
    idp_store::db::migrate(&db).await.unwrap();
    let clock = Arc::new(SystemClock);
    let changes = Arc::new(Changes::new(db.clone(), &url));
    let accounts = Arc::new(SqlAccounts::new(db.clone(), clock.clone(), changes.clone()));
    let registry = Arc::new(SqlServices::new(db.clone(), clock.clone(), changes.clone()));
    use idp_core::ports::{AccountRepository, ServiceRegistry};
    let account = accounts
        .create(NewAccount {
            login: Login::parse("c.martin").unwrap(),
            profile: Profile::Eleve,
            given_name: "Camille".into(),
            family_name: "Martin".into(),
            email: None,
            schools: vec!["0370001A".into()],
            state: AccountState::Active,
            password_hash: Some("x".into()),
            provisional_hash: None,
            cgu_version: Some("1".into()),
            attributes: Default::default(),
        })
        .await
        .unwrap();
    for i in 0..services {
        registry
            .add(Service {
                id: ServiceId::parse(&format!("svc-{i:03}")).unwrap(),
                name: format!("Service {i}"),
                url_pattern: UrlPattern::parse(&format!(r"https://app{i}\.example\.fr/.*")).unwrap(),
                attributes: vec!["uid".into(), "given_name".into(), "family_name".into(), "school".into()],
                logout_url: None,
                evaluation_order: 0,
                policy: Default::default(),
            })
            .await
            .unwrap();
    }
    let ports = CasPorts {
        proxies: Arc::new(MemoryProxyTickets::default()),
        pseudonyms: Arc::new(SqlPseudonyms::new(db.clone(), clock.clone(), changes)),
        accounts,
        services: registry,
        tickets: Arc::new(MemoryTickets::default()),
        sessions: Arc::new(MemorySessions::default()),
        outbound: Arc::new(NoOutbound),
        audit: Arc::new(NoAudit),
        clock,
    };
    let cas = Cas::new(ports, SessionPolicy::default(), Vec::new());
    let session = cas.open_session(&account, None, cas.now()).await.unwrap();
    let url = ServiceUrl::parse(&format!("https://app{}.example.fr/", services / 2)).unwrap();
    let (_, service) = cas.registered_service(url.as_str()).await.unwrap();
    (cas, session, url, service)
}

fn cas(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("idp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cas, session, url, service) = rt.block_on(setup(50, &dir));
    let tgc = session.id.expose().to_owned();

    c.bench_function("cas/SSO round: session + service + ticket + validate + XML (50 services)", |b| {
        b.to_async(&rt).iter(|| async {
            let (session, _account) = cas.current_session(Some(&tgc)).await.unwrap().unwrap();
            let (u, s) = cas.registered_service(url.as_str()).await.unwrap();
            let ticket = cas.issue_service_ticket(&session, &u, &s, false).await.unwrap().id;
            let params = ValidateParams {
                service: Some(url.as_str().to_owned()),
                ticket: Some(ticket.expose().to_owned()),
                ..Default::default()
            };
            let outcome = cas.validate(&params).await;
            response::xml(&outcome, Attributes::Include)
        })
    });

    c.bench_function("cas/issue_service_ticket (SSO, 50 services)", |b| {
        b.to_async(&rt).iter(|| async {
            let (u, s) = cas.registered_service(url.as_str()).await.unwrap();
            cas.issue_service_ticket(&session, &u, &s, false).await.unwrap()
        })
    });

    c.bench_function("cas/issue + validate + XML (50 services)", |b| {
        b.to_async(&rt).iter(|| async {
            let ticket = cas.issue_service_ticket(&session, &url, &service, true).await.unwrap().id;
            let params = ValidateParams {
                service: Some(url.as_str().to_owned()),
                ticket: Some(ticket.expose().to_owned()),
                ..Default::default()
            };
            let outcome = cas.validate(&params).await;
            response::xml(&outcome, Attributes::Include)
        })
    });

    let outcome = rt.block_on(async {
        let t = cas.issue_service_ticket(&session, &url, &service, true).await.unwrap();
        cas.validate(&ValidateParams {
            service: Some(url.as_str().to_owned()),
            ticket: Some(t.id.expose().to_owned()),
            ..Default::default()
        })
        .await
    });
    c.bench_function("cas/render XML success", |b| b.iter(|| response::xml(&outcome, Attributes::Include)));

    let hasher = Argon2Hasher::new(Argon2Params::default()).unwrap();
    let hash = hasher.hash(&Secret::new("Bonjour-2026!")).unwrap();
    let mut group = c.benchmark_group("password");
    group.sample_size(20);
    group.bench_function("argon2id verify (m=19456 KiB, t=2, p=1)", |b| {
        b.iter(|| hasher.verify(&Secret::new("Bonjour-2026!"), Some(&hash)))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, cas);
criterion_main!(benches);
