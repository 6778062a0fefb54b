//! `idp admin grant|revoke|list|audit`, run as the real binary: the output
//! rule (listings on stdout, messages on stderr, nothing on stdout when a
//! command fails), exit statuses, and a grant seen at once by a server on
//! the same store.

use crate::cli::Idp;
use crate::helpers::spawn_app;

const PASSWORD: &str = "Bonjour-2026!";

#[tokio::test]
async fn grant_list_revoke_and_the_audit_export() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::new(dir.path());
    idp.create_active("sec.college", PASSWORD).await;
    idp.create_active("dane.operateur", PASSWORD).await;

    let out = idp.run(&["admin", "grant", "sec.college", "--school", "0370001a", "--school", "0370002B"]).await;
    out.ok();
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("0370001A, 0370002B"), "{}", out.stderr);
    idp.run(&["admin", "grant", "dane.operateur", "--global"]).await.ok();

    let list = idp.run(&["admin", "list"]).await;
    list.ok();
    let lines: Vec<Vec<&str>> = list.stdout.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{}", list.stdout);
    assert_eq!(&lines[0][..2], ["dane.operateur", "*"]);
    assert_eq!(&lines[1][..2], ["sec.college", "0370001A 0370002B"]);

    // A new grant replaces the old one.
    idp.run(&["admin", "grant", "sec.college", "--school", "0370001A"]).await.ok();
    let list = idp.run(&["admin", "list"]).await;
    assert!(list.stdout.contains("sec.college\t0370001A\t"), "{}", list.stdout);

    idp.run(&["admin", "revoke", "sec.college"]).await.ok();
    idp.run(&["admin", "revoke", "sec.college"]).await.fails_with("not an administrator");
    let list = idp.run(&["admin", "list"]).await;
    assert!(!list.stdout.contains("sec.college"), "{}", list.stdout);

    let csv = idp.run(&["admin", "audit"]).await;
    csv.ok();
    let rows: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(rows[0], "at,actor,action,target,source,detail");
    let actions: Vec<&str> = rows[1..].iter().map(|r| r.split(',').nth(2).unwrap()).collect();
    assert_eq!(actions, ["grant", "grant", "grant", "revoke"]);
    assert!(rows[1].ends_with(",cli,grant,sec.college,cli,0370001A 0370002B"), "{}", rows[1]);

    let json = idp.run(&["admin", "audit", "--format", "json"]).await;
    json.ok();
    let first: serde_json::Value = serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!((first["action"].as_str(), first["target"].as_str()), (Some("grant"), Some("sec.college")));
    let later = idp.run(&["admin", "audit", "--since", "2999-01-01"]).await;
    assert_eq!(later.stdout, "at,actor,action,target,source,detail\n");
    idp.run(&["admin", "audit", "--since", "hier"]).await.fails_with("--since");
    idp.run(&["admin", "audit", "--format", "xml"]).await.fails_with("unknown format");
}

#[tokio::test]
async fn only_an_existing_active_account_gets_a_role() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::new(dir.path());
    idp.run(&["account", "create", "eleve.lea", "--profile", "eleve", "--given-name", "Léa", "--family-name", "Dupré"])
        .await
        .ok();
    idp.run(&["admin", "grant", "eleve.lea", "--school", "0370001A"]).await.fails_with("not active");
    idp.run(&["admin", "grant", "personne", "--global"]).await.fails_with("not found");
    idp.create_active("sec.college", PASSWORD).await;
    idp.run(&["admin", "grant", "sec.college", "--school", "37"]).await.fails_with("UAI");
    let neither = idp.run(&["admin", "grant", "sec.college"]).await;
    assert!(!neither.success() && neither.stdout.is_empty(), "--school or --global is required");
    let both = idp.run(&["admin", "grant", "sec.college", "--global", "--school", "0370001A"]).await;
    assert!(!both.success() && both.stdout.is_empty(), "not both");
    assert_eq!(idp.run(&["admin", "list"]).await.stdout, "");
}

#[tokio::test]
async fn a_grant_by_the_cli_opens_the_console_of_a_running_server() {
    let app = spawn_app().await;
    let idp = Idp::new(app.data_dir.path());
    idp.create_active("sec.college", PASSWORD).await;
    assert_eq!(app.login(None, "sec.college", PASSWORD).await.status, 200);
    let before = app.client.get(app.url("/gestion/")).send().await.unwrap();
    assert_eq!(before.status(), 403);
    idp.run(&["admin", "grant", "sec.college", "--school", "0370001A"]).await.ok();
    let after = app.client.get(app.url("/gestion/")).send().await.unwrap();
    assert_eq!(after.status(), 200);
}
