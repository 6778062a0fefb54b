//! CAS proxy authentication end to end: a portal obtains a PGT through an
//! https callback listener run by the test (its certificate signed by a test
//! CA that the server trusts through `outbound_extra_ca_file`), asks for
//! proxy tickets, and the target validates them with `<cas:proxies>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use idp_core::access::ServicePolicy;
use idp_core::account::Profile;
use idp_core::proxy::ProxyPolicy;
use idp_core::service::UrlPattern;

use crate::helpers::{TestApp, assert_valid_cas_xml, spawn_app_with};

const PASSWORD: &str = "Bonjour-2026!";
pub(crate) const PORTAL: &str = "https://portail.example.test/accueil";
pub(crate) const PORTAL_PATTERN: &str = r"https://portail\.example\.test/.*";
pub(crate) const CDT: &str = "https://cdt.example.test/api";
pub(crate) const CDT_PATTERN: &str = r"https://cdt\.example\.test/.*";
const MAIL: &str = "https://messagerie.example.test/";
pub(crate) const MAIL_PATTERN: &str = r"https://messagerie\.example\.test/.*";

/// A certificate authority made for one test.
pub(crate) struct TestCa {
    pub(crate) params: CertificateParams,
    pub(crate) key: KeyPair,
    pub(crate) pem: String,
}

impl TestCa {
    /// A TLS listener on 127.0.0.1 with a certificate of this CA, and its
    /// `https://` base URL.
    pub(crate) async fn tls_listener(&self) -> (TlsAcceptor, tokio::net::TcpListener, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let cert = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key)).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        (acceptor, listener, base)
    }
}

pub(crate) fn test_ca(name: &str) -> TestCa {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let pem = params.self_signed(&key).unwrap().pem();
    TestCa { params, key, pem }
}

/// What the callback listener received: the path and query of each GET.
type Received = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

/// An https listener on 127.0.0.1 with a certificate signed by `ca`. It
/// answers 200 on paths starting with `/pgt` (but `…/404`), 404 elsewhere.
pub(crate) struct Callback {
    pub(crate) base: String,
    received: Received,
}

impl Callback {
    pub(crate) async fn spawn(ca: &TestCa) -> Callback {
        let (acceptor, listener, base) = ca.tls_listener().await;
        let received: Received = Arc::default();
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, log) = (acceptor.clone(), log.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 2048];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let target = text.split(' ').nth(1).unwrap_or("/").to_owned();
                    let url = url::Url::parse(&format!("https://x{target}")).unwrap();
                    let query = url.query_pairs().into_owned().collect();
                    let ok = url.path().starts_with("/pgt") && !url.path().ends_with("/404");
                    log.lock().unwrap().push((url.path().to_owned(), query));
                    let status = if ok { "200 OK" } else { "404 Not Found" };
                    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Callback { base, received }
    }

    /// The PGT delivered with `iou`.
    fn pgt_for(&self, iou: &str) -> String {
        let received = self.received.lock().unwrap();
        let (_, q) = received
            .iter()
            .find(|(_, q)| q.get("pgtIou").map(String::as_str) == Some(iou))
            .unwrap_or_else(|| panic!("no callback with pgtIou={iou}: {received:?}"));
        q["pgtId"].clone()
    }
}

pub(crate) fn proxying(callback: &str, targets: &str) -> ServicePolicy {
    ServicePolicy {
        proxy: Some(ProxyPolicy {
            callback: UrlPattern::parse(callback).unwrap(),
            targets: UrlPattern::parse(targets).unwrap(),
        }),
        ..ServicePolicy::default()
    }
}

/// A server trusting `ca`, with the portal (may proxy to the cahier de
/// textes), the cahier de textes (may proxy to the messagerie) and the
/// messagerie registered, and a logged-in teacher.
async fn setup(ca: &TestCa) -> TestApp {
    setup_with(ca, None).await
}

/// [`setup`], with tickets in Redis when `redis_url` is given.
async fn setup_with(ca: &TestCa, redis_url: Option<String>) -> TestApp {
    let ca_file = tempfile::NamedTempFile::new().unwrap().into_temp_path().keep().unwrap();
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let app = spawn_app_with(|s| {
        s.outbound_extra_ca_file = Some(ca_file);
        if let Some(url) = redis_url {
            s.redis_url = Some(url);
            s.redis_prefix = format!("idp-test-{}:", idp_core::secret::random_token(12).unwrap());
        }
    })
    .await;
    app.active_account("p.prof", PASSWORD, Profile::Personnel).await;
    let callbacks = r"https://127\.0\.0\.1:\d+/pgt.*";
    app.service_with_policy("portail", PORTAL_PATTERN, &["uid"], None, proxying(callbacks, CDT_PATTERN)).await;
    app.service_with_policy("cdt", CDT_PATTERN, &["uid", "nom=family_name"], None, proxying(callbacks, MAIL_PATTERN))
        .await;
    app.service("messagerie", MAIL_PATTERN, &["mail"], None).await;
    app
}

pub(crate) fn between<'a>(body: &'a str, open: &str, close: &str) -> &'a str {
    let start = body.find(open).unwrap_or_else(|| panic!("no {open} in {body}")) + open.len();
    &body[start..start + body[start..].find(close).unwrap()]
}

/// `/cas/proxy`, schema-checked.
pub(crate) async fn proxy(app: &TestApp, pgt: &str, target: &str) -> String {
    let (status, ct, body) = app.validate("/cas/proxy", &[("pgt", pgt), ("targetService", target)]).await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/xml; charset=utf-8");
    assert_valid_cas_xml(&body);
    body
}

/// Validates a ticket with a pgtUrl and returns the delivered PGT.
pub(crate) async fn pgt(app: &TestApp, callback: &Callback, path: &str, service: &str, ticket: &str) -> String {
    let pgt_url = format!("{}{path}", callback.base);
    let query = [("service", service), ("ticket", ticket), ("pgtUrl", pgt_url.as_str())];
    let (_, _, body) = app.validate(path_for(ticket), &query).await;
    assert_valid_cas_xml(&body);
    let iou = between(&body, "<cas:proxyGrantingTicket>", "</cas:proxyGrantingTicket>");
    assert!(iou.starts_with("PGTIOU-"), "{body}");
    let pgt = callback.pgt_for(iou);
    assert!(pgt.starts_with("PGT-") && !pgt.contains(&iou[7..]), "{pgt}");
    pgt
}

fn path_for(ticket: &str) -> &'static str {
    if ticket.starts_with("PT-") { "/cas/p3/proxyValidate" } else { "/cas/p3/serviceValidate" }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_chain_end_to_end_then_the_pgt_dies_with_the_session() {
    proxy_chain(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_chain_end_to_end_with_tickets_in_redis() {
    let Some(url) = crate::cluster::redis_url() else { return };
    proxy_chain(Some(url)).await;
}

async fn proxy_chain(redis_url: Option<String>) {
    let ca = test_ca("idp test CA");
    let callback = Callback::spawn(&ca).await;
    let app = setup_with(&ca, redis_url).await;

    // The portal validates its ticket with a pgtUrl: its callback gets the PGT.
    let st = app.login(Some(PORTAL), "p.prof", PASSWORD).await.ticket();
    let portal_pgt = pgt(&app, &callback, "/pgt/portail?x=1", PORTAL, &st).await;
    let delivered = callback.received.lock().unwrap().last().unwrap().1.clone();
    assert_eq!(delivered.get("x").map(String::as_str), Some("1"), "the callback URL's own query is kept");

    // PGT -> PT for the cahier de textes.
    let body = proxy(&app, &portal_pgt, CDT).await;
    let pt = between(&body, "<cas:proxyTicket>", "</cas:proxyTicket>").to_owned();
    assert!(pt.starts_with("PT-"), "{body}");

    // serviceValidate refuses a proxy ticket (and spends it).
    let (_, _, refused) = app.validate("/cas/serviceValidate", &[("service", CDT), ("ticket", &pt)]).await;
    assert_valid_cas_xml(&refused);
    assert!(refused.contains(r#"code="INVALID_TICKET_SPEC""#), "{refused}");
    let (_, _, spent) = app.validate("/cas/proxyValidate", &[("service", CDT), ("ticket", &pt)]).await;
    assert!(spent.contains(r#"code="INVALID_TICKET""#), "{spent}");

    // proxyValidate accepts a fresh PT and names the proxy.
    let body = proxy(&app, &portal_pgt, CDT).await;
    let pt = between(&body, "<cas:proxyTicket>", "</cas:proxyTicket>").to_owned();
    let portal_proxy = format!("{}/pgt/portail?x=1", callback.base);
    let cdt_pgt_url = format!("{}/pgt/cdt", callback.base);
    let query = [("service", CDT), ("ticket", pt.as_str()), ("pgtUrl", cdt_pgt_url.as_str())];
    let (_, _, body) = app.validate("/cas/p3/proxyValidate", &query).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains("<cas:user>p.prof</cas:user>") && body.contains("<cas:nom>Martin</cas:nom>"), "{body}");
    assert!(
        body.contains(&format!("<cas:proxies>\n      <cas:proxy>{}</cas:proxy>", portal_proxy.replace('&', "&amp;")))
    );
    assert!(body.contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"), "{body}");
    // The cahier de textes proxies in turn: the chain, most recent first.
    let iou = between(&body, "<cas:proxyGrantingTicket>", "</cas:proxyGrantingTicket>");
    let cdt_pgt = callback.pgt_for(iou);
    let body = proxy(&app, &cdt_pgt, MAIL).await;
    let pt2 = between(&body, "<cas:proxyTicket>", "</cas:proxyTicket>").to_owned();
    let (_, _, body) =
        app.validate("/cas/proxyValidate", &[("service", MAIL), ("ticket", &pt2), ("format", "JSON")]).await;
    let json: Value = serde_json::from_str(&body).unwrap();
    let success = &json["serviceResponse"]["authenticationSuccess"];
    assert_eq!(success["user"], "p.prof");
    assert_eq!(success["proxies"], serde_json::json!([cdt_pgt_url, portal_proxy]));

    // Logout ends the SSO session: its PGTs go with it.
    let r = app.client.get(app.url("/cas/logout")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    for pgt in [&portal_pgt, &cdt_pgt] {
        let body = proxy(&app, pgt, CDT).await;
        assert!(body.contains(r#"<cas:proxyFailure code="INVALID_TICKET">"#), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthorized_proxying_is_refused() {
    let ca = test_ca("idp test CA");
    let callback = Callback::spawn(&ca).await;
    let app = setup(&ca).await;
    let st = app.login(Some(PORTAL), "p.prof", PASSWORD).await.ticket();
    let portal_pgt = pgt(&app, &callback, "/pgt", PORTAL, &st).await;

    // A target outside the portal's allowed targets, or not registered.
    for target in [MAIL, "https://cdt.example.test.evil.test/", "https://inconnu.example.test/"] {
        let body = proxy(&app, &portal_pgt, target).await;
        assert!(body.contains(r#"<cas:proxyFailure code="UNAUTHORIZED_SERVICE">"#), "{target}: {body}");
    }
    // Missing parameters, an unknown PGT.
    let (_, _, body) = app.validate("/cas/proxy", &[("pgt", portal_pgt.as_str())]).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains(r#"code="INVALID_REQUEST""#), "{body}");
    let body = proxy(&app, "PGT-inconnu", CDT).await;
    assert!(body.contains(r#"code="INVALID_TICKET""#), "{body}");

    // A service without a proxy policy gets no PGT (no service can proxy by default).
    let mail_ticket = app.get_login(&[("service", MAIL)]).await.ticket();
    let pgt_url = format!("{}/pgt", callback.base);
    let (_, _, body) = app
        .validate("/cas/serviceValidate", &[("service", MAIL), ("ticket", &mail_ticket), ("pgtUrl", &pgt_url)])
        .await;
    assert_valid_cas_xml(&body);
    assert!(body.contains(r#"code="UNAUTHORIZED_SERVICE_PROXY""#), "{body}");

    // A callback outside the policy's pattern, plain http, answering 404,
    // or with a certificate from an untrusted CA: no PGT.
    let untrusted = Callback::spawn(&test_ca("unknown CA")).await;
    let cases = [
        ("https://portail.example.test/pgt".to_owned(), "UNAUTHORIZED_SERVICE_PROXY"),
        (format!("{}/pgt", callback.base.replace("https://", "http://")), "INVALID_PROXY_CALLBACK"),
        (format!("{}/pgt/404", callback.base), "INVALID_PROXY_CALLBACK"),
        (format!("{}/pgt/../elsewhere", callback.base), "UNAUTHORIZED_SERVICE_PROXY"),
        (format!("{}/pgt", untrusted.base), "INVALID_PROXY_CALLBACK"),
    ];
    for (pgt_url, code) in cases {
        let st = app.get_login(&[("service", PORTAL)]).await.ticket();
        let query = [("service", PORTAL), ("ticket", st.as_str()), ("pgtUrl", pgt_url.as_str())];
        let (_, _, body) = app.validate("/cas/serviceValidate", &query).await;
        assert_valid_cas_xml(&body);
        assert!(body.contains(&format!(r#"code="{code}""#)), "{pgt_url}: {body}");
        assert!(!body.contains("proxyGrantingTicket"), "{body}");
    }
    assert!(untrusted.received.lock().unwrap().is_empty(), "no request completed over an untrusted certificate");
}

/// The Redis adapter: PGTs kept under their session and removed with it, PTs
/// taken once. Skipped without `IDP_TEST_REDIS_URL` (see `cluster`).
#[tokio::test(flavor = "multi_thread")]
async fn the_redis_proxy_store_ties_pgts_to_their_session_and_takes_pts_once() {
    use idp_core::proxy::{ProxyGrantingTicket, ProxyTicket, ProxyTicketStore};
    use idp_core::session::ServiceTicket;
    use idp_store::redis_store::Redis;

    let Some(url) = crate::cluster::redis_url() else { return };
    let prefix = format!("idp-test-{}:", idp_core::secret::random_token(12).unwrap());
    let store = idp_store::proxy::RedisProxyTickets(Redis::connect(&url, &prefix).await.expect("Redis answers"));
    let ttl = std::time::Duration::from_secs(60);
    let now = chrono::Utc::now();
    let pgt = |id: &str, session: &str| ProxyGrantingTicket {
        id: id.into(),
        session_id: session.into(),
        account_id: 1,
        login: "p.prof".into(),
        authenticated_at: now,
        service_id: "portail".into(),
        callback_url: "https://portail.example.test/pgt".into(),
        proxies: vec![],
    };
    for (id, session) in [("PGT-1", "TGT-a"), ("PGT-2", "TGT-a"), ("PGT-3", "TGT-b")] {
        store.put_pgt(&pgt(id, session), ttl).await.unwrap();
    }
    assert_eq!(store.get_pgt("PGT-1").await.unwrap(), Some(pgt("PGT-1", "TGT-a")));
    assert_eq!(store.remove_session("TGT-a").await.unwrap(), 2);
    assert_eq!(store.get_pgt("PGT-1").await.unwrap(), None);
    assert_eq!(store.get_pgt("PGT-2").await.unwrap(), None);
    assert!(store.get_pgt("PGT-3").await.unwrap().is_some(), "another session's PGT stays");
    assert_eq!(store.remove_session("TGT-none").await.unwrap(), 0);

    let pt = ProxyTicket {
        ticket: ServiceTicket {
            id: "PT-1".into(),
            service_url: CDT.into(),
            service_id: "cdt".into(),
            session_id: "TGT-b".into(),
            account_id: 1,
            login: "p.prof".into(),
            authenticated_at: now,
            from_new_login: false,
            expires_at: now,
            amr: Vec::new(),
        },
        proxies: vec!["https://portail.example.test/pgt".into()],
    };
    store.put_pt(&pt, ttl).await.unwrap();
    let (a, b) = tokio::join!(store.take_pt("PT-1"), store.take_pt("PT-1"));
    let taken: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken, vec![pt], "exactly one taker");
}

/// python-cas, a real third-party client, as the portal: it validates with a
/// `proxy_callback` and reads the PGT IOU, then obtains a proxy ticket.
#[tokio::test(flavor = "multi_thread")]
async fn python_cas_obtains_a_pgt_iou_and_a_proxy_ticket() {
    let ca = test_ca("idp test CA");
    let callback = Callback::spawn(&ca).await;
    let app = setup(&ca).await;
    let st = app.login(Some(PORTAL), "p.prof", PASSWORD).await.ticket();
    let python = tokio::task::spawn_blocking(crate::helpers::python).await.unwrap();
    let run = |script: &'static str, args: Vec<String>| {
        let python = python.clone();
        async move {
            let output = tokio::process::Command::new(python).arg("-c").arg(script).args(args).output().await.unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
            stdout
        }
    };
    let validate = concat!(
        "import sys\n",
        "from cas import CASClient\n",
        "c = CASClient(version=3, server_url=sys.argv[1], service_url=sys.argv[2], proxy_callback=sys.argv[3])\n",
        "user, attributes, pgtiou = c.verify_ticket(sys.argv[4])\n",
        "print(user, pgtiou)\n",
    );
    let pgt_url = format!("{}/pgt/python", callback.base);
    let out = run(validate, vec![app.url("/cas/"), PORTAL.into(), pgt_url, st]).await;
    let (user, iou) = out.split_once(' ').unwrap();
    assert_eq!(user, "p.prof");
    let pgt = callback.pgt_for(iou);

    let proxy = concat!(
        "import sys\n",
        "from cas import CASClient\n",
        "print(CASClient(version=3, server_url=sys.argv[1], service_url=sys.argv[2]).get_proxy_ticket(sys.argv[3]))\n",
    );
    let pt = run(proxy, vec![app.url("/cas/"), CDT.into(), pgt]).await;
    assert!(pt.starts_with("PT-"), "{pt}");
    let (_, _, body) = app.validate("/cas/proxyValidate", &[("service", CDT), ("ticket", &pt)]).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains("<cas:user>p.prof</cas:user>") && body.contains("/pgt/python</cas:proxy>"), "{body}");
}
