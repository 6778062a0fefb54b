//! Interop with a real third-party OpenID Connect relying party: Authlib
//! (PyPI), driven by `tests/interop/oidc_rp_check.py`, logs in through the
//! real CAS form and checks the ID token, UserInfo, refresh, introspection
//! and RP-initiated logout.

use super::*;
use crate::helpers::{python, repo_root};

#[tokio::test(flavor = "multi_thread")]
async fn authlib_logs_in_verifies_the_id_token_refreshes_and_logs_out() {
    let app = oidc_app().await;
    add_client(&app, "authlib", Some(SECRET), &[REDIRECT], |c| {
        c.post_logout_redirect_uris = vec!["https://vie-scolaire.example.test/au-revoir".into()];
    })
    .await;
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let output = tokio::process::Command::new(python)
        .arg(repo_root().join("tests/interop/oidc_rp_check.py"))
        .args(["--issuer", &app.address])
        .args(["--client-id", "authlib", "--client-secret", SECRET])
        .args(["--redirect-uri", REDIRECT])
        .args(["--post-logout-redirect-uri", "https://vie-scolaire.example.test/au-revoir"])
        .args(["--username", "c.martin", "--password", PASSWORD])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "Authlib check failed:\n{stdout}\n{stderr}");
    for step in
        ["discovery ok", "login ok", "id token ok", "userinfo ok", "refresh ok", "introspection ok", "logout ok"]
    {
        assert!(stdout.contains(step), "{stdout}");
    }
}
