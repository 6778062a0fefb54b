//! Interop with a real third-party CAS client: python-cas (PyPI) logs in
//! through the real form and validates tickets with CAS 1, 2 and 3.

use idp_core::account::Profile;

use crate::helpers::{python, repo_root, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_validates_tickets_with_protocols_1_2_and_3() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service(
        "app",
        r"https://app\.example\.test/.*",
        &["uid", "given_name", "family_name", "school", "ENTPersonProfils"],
        None,
    )
    .await;
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let output = tokio::process::Command::new(python)
        .arg(repo_root().join("tests/interop/cas_client_check.py"))
        .args(["--cas-url", &app.url("/cas/")])
        .args(["--service", "https://app.example.test/"])
        .args(["--username", "c.martin", "--password", "Bonjour-2026!"])
        .args([
            "--expect-attribute",
            "given_name",
            "--expect-attribute",
            "school",
            "--expect-attribute",
            "ENTPersonProfils",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python-cas check failed:\n{stdout}\n{stderr}");
    for version in ["CAS1 ok", "CAS2 ok", "CAS3 ok"] {
        assert!(stdout.contains(version), "{stdout}");
    }
}
