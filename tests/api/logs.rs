//! No secret reaches the logs: a whole run (a failed and a good login, a
//! CAS proxy chain with a callback that answers, one that refuses and one
//! that is down, an OIDC code exchange and refresh, a logout) is logged
//! into a buffer, which must not hold a ticket, code, token or password.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use crate::cas_proxy::{CDT, CDT_PATTERN, Callback, PORTAL, PORTAL_PATTERN, between, pgt, proxying, test_ca};
use crate::oidc::{PASSWORD, oidc_app_with};

/// Everything logged by this process, as `idp serve` formats it (text),
/// with debug events of the idp crates too.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,idp=debug"))
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        logs
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_ticket_code_token_or_password_is_logged() {
    let logs = captured_logs();
    let ca = test_ca("idp log test CA");
    let callback = Callback::spawn(&ca).await;
    let ca_file = tempfile::NamedTempFile::new().unwrap().into_temp_path().keep().unwrap();
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let app = oidc_app_with(|s| s.outbound_extra_ca_file = Some(ca_file)).await;
    let callbacks = r"https://127\.0\.0\.1:\d+/pgt.*";
    app.service_with_policy("portail", PORTAL_PATTERN, &["uid"], None, proxying(callbacks, CDT_PATTERN)).await;
    app.service_with_policy("cdt", CDT_PATTERN, &["uid"], None, Default::default()).await;
    let mut secrets = vec![PASSWORD.to_owned(), "Mauvais-mot-2026!".to_owned()];

    // A wrong password, then the right one.
    let wrong = app.login(Some(PORTAL), "c.martin", "Mauvais-mot-2026!").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let st = app.login(Some(PORTAL), "c.martin", PASSWORD).await.ticket();
    secrets.push(st.clone());

    // The portal gets a PGT through its callback, then a proxy ticket.
    let portal_pgt = pgt(&app, &callback, "/pgt/portail?x=1", PORTAL, &st).await;
    secrets.push(portal_pgt.clone());
    let (_, _, body) = app.validate("/cas/proxy", &[("pgt", &portal_pgt), ("targetService", CDT)]).await;
    let pt = between(&body, "<cas:proxyTicket>", "</cas:proxyTicket>").to_owned();
    secrets.push(pt.clone());
    let (_, _, body) = app.validate("/cas/p3/proxyValidate", &[("service", CDT), ("ticket", &pt)]).await;
    assert!(body.contains("<cas:authenticationSuccess>"), "{body}");
    // A spent ticket is refused (and logged as refused).
    let (_, _, body) = app.validate("/cas/p3/proxyValidate", &[("service", CDT), ("ticket", &pt)]).await;
    assert!(body.contains("INVALID_TICKET"), "{body}");

    // Callbacks that refuse (404) and that are down: the PGT is not given,
    // and the failure is logged.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("https://127.0.0.1:{}/pgt/down?x=1", listener.local_addr().unwrap().port())
    };
    let refusing = format!("{}/pgt/404", callback.base);
    for pgt_url in [refusing, down] {
        // Single sign-on: the session gives the ticket.
        let st = app.get_login(&[("service", PORTAL)]).await.ticket();
        secrets.push(st.clone());
        let query = [("service", PORTAL), ("ticket", st.as_str()), ("pgtUrl", pgt_url.as_str())];
        let (_, _, body) = app.validate("/cas/p3/serviceValidate", &query).await;
        assert!(body.contains("INVALID_PROXY_CALLBACK") && !body.contains("PGTIOU"), "{body}");
    }

    // OIDC: a code, its tokens, a refresh, then the code replayed.
    let code = app.another_browser().code("s1").await;
    let (status, tokens) = app.exchange(&code).await;
    assert_eq!(status, 200, "{tokens}");
    for name in ["access_token", "id_token"] {
        secrets.push(tokens[name].as_str().unwrap().to_owned());
    }
    if let Some(refresh) = tokens["refresh_token"].as_str() {
        let (status, renewed) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
        assert_eq!(status, 200, "{renewed}");
        secrets.push(refresh.to_owned());
        secrets.push(renewed["refresh_token"].as_str().unwrap_or("none").to_owned());
    }
    let (status, _) = app.exchange(&code).await;
    assert_eq!(status, 400);
    secrets.push(code);

    let r = app.client.get(app.url("/cas/logout")).send().await.unwrap();
    assert!(r.status().is_success() || r.status().is_redirection());

    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("idp::audit"), "the logs were captured:\n{logs}");
    assert!(logs.contains("proxy callback failed"), "{logs}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "{secret} is in the logs:\n{logs}");
    }
    // Tickets the test never saw (the PGT sent to the refusing and the
    // down callbacks, the session's TGT) by their shape.
    let ticket = regex::Regex::new(r"\b(ST|PT|PGT|PGTIOU|TGT)-[A-Za-z0-9]{16,}").unwrap();
    assert!(!ticket.is_match(&logs), "a ticket is in the logs:\n{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typed_login_is_logged_cut_and_on_one_line() {
    let logs = captured_logs();
    let app = crate::helpers::spawn_app().await;
    let forged = "\n2026-01-01T00:00:00Z  INFO idp::audit: login succeeded login=admin source=10.0.0.1\n";
    let typed = format!("eve\u{1b}[2J{forged}{}", "x".repeat(60_000));
    let r = app.login(None, &typed, "Mauvais-mot-2026!").await;
    assert_eq!(r.status, 401, "{}", r.body);

    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let line = logs.lines().find(|l| l.contains("login failed")).unwrap_or_else(|| panic!("{logs}"));
    assert!(
        line.contains(r"login=eve\u{1b}[2J\n2026-01-01T00:00:00Z  INFO idp::audit: login succeeded l… source="),
        "{line}"
    );
    assert!(line.len() < 300, "{line}");
    assert!(!logs.contains("login=admin source=10.0.0.1\n"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "{logs}");
}
