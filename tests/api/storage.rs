//! What the server keeps at rest: the deployment secrets it makes itself
//! (the decoy-question key), shared by every node on the same database.

use idp_core::questions::default_questions;

use crate::account_helpers::{post, text};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// Logins no account has: each gets two decoy questions.
const UNKNOWN: [&str; 12] =
    ["inconnu1", "inconnu2", "x.y", "a.b", "z", "nobody", "eleve.42", "p.p", "q", "r.s", "t.u", "v.w"];

/// The questions the forgotten-password page asks for `login`, in order.
async fn questions_for(app: &TestApp, login: &str) -> Vec<String> {
    let from = "/compte/mot-de-passe-oublie";
    let r = post(app, from, "/compte/mot-de-passe-oublie/questions", &[("identifiant", login)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let page = text(&r);
    let mut shown: Vec<(usize, String)> =
        default_questions().into_iter().filter_map(|q| page.find(&q).map(|at| (at, q))).collect();
    shown.sort();
    assert_eq!(shown.len(), 2, "two questions expected: {page}");
    shown.into_iter().map(|(_, q)| q).collect()
}

async fn decoys(app: &TestApp) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for login in UNKNOWN {
        all.push(questions_for(app, login).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn the_decoy_key_is_made_at_first_start_and_shared_by_the_nodes_of_one_database() {
    let first = spawn_app().await;
    let database = first.settings.database_url();
    let second = spawn_app_with(|s| s.database_url = Some(database.clone())).await;
    let shared = decoys(&first).await;
    assert_eq!(decoys(&second).await, shared, "two nodes on one database ask the same decoys");

    // The decoys are not those of the public default key...
    let public = spawn_app_with(|s| s.accounts.decoy_key = Some("idp-decoy".into())).await;
    let public_decoys = decoys(&public).await;
    assert_ne!(shared, public_decoys);
    // ...nor those of another deployment.
    assert_ne!(decoys(&spawn_app().await).await, shared);

    // A configured key wins over the stored one.
    let configured = spawn_app_with(|s| {
        s.database_url = Some(database);
        s.accounts.decoy_key = Some("idp-decoy".into());
    })
    .await;
    assert_eq!(decoys(&configured).await, public_decoys);
}

/// The `(kid, private_pem)` rows of the signing keys, as stored.
async fn stored_keys(app: &TestApp) -> Vec<(String, String)> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.stores.db;
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT kid, private_pem FROM oidc_keys"))
        .await
        .unwrap();
    rows.iter().map(|r| (r.try_get("", "kid").unwrap(), r.try_get("", "private_pem").unwrap())).collect()
}

async fn jwks(app: &TestApp) -> serde_json::Value {
    reqwest::get(app.url("/oidc/jwks")).await.unwrap().json().await.unwrap()
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_private_keys_are_encrypted_at_rest_and_keys_stored_in_clear_are_encrypted_at_start() {
    let first = spawn_app().await;
    let stored = stored_keys(&first).await;
    assert!(!stored.is_empty());
    for (kid, pem) in &stored {
        assert!(pem.starts_with("v1:") && !pem.contains("PRIVATE KEY"), "{kid}: {pem}");
    }
    let key_file = first.data_dir.path().join("key-encryption.key");
    #[cfg(unix)]
    assert_eq!(mode(&key_file), 0o600);
    #[cfg(unix)]
    for file in ["idp.db", "idp.db-wal", "idp.db-shm"] {
        let path = first.data_dir.path().join(file);
        if path.exists() || file == "idp.db" {
            assert_eq!(mode(&path), 0o600, "{file} is private");
        }
    }

    // A database of an earlier version holds its keys in clear.
    let clear = first.stores.keys.list().await.unwrap();
    {
        use sea_orm::{ConnectionTrait, Statement};
        let db = &first.stores.db;
        for key in &clear {
            let sql = "UPDATE oidc_keys SET private_pem = $1 WHERE kid = $2";
            let values = [key.private_pem.expose().into(), key.kid.clone().into()];
            db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values)).await.unwrap();
        }
    }
    assert!(stored_keys(&first).await.iter().all(|(_, pem)| pem.contains("PRIVATE KEY")));
    // A node starting on it signs with the same keys, and stores them
    // encrypted again.
    let database = first.settings.database_url();
    let second = spawn_app_with(|s| s.database_url = Some(database)).await;
    assert_eq!(jwks(&second).await, jwks(&first).await, "the same keys, no new ones");
    let again = stored_keys(&second).await;
    assert_eq!(again.len(), stored.len());
    assert!(again.iter().all(|(_, pem)| pem.starts_with("v1:") && !pem.contains("PRIVATE KEY")), "{again:?}");
    let reloaded = second.stores.keys.list().await.unwrap();
    assert_eq!(
        reloaded.iter().map(|k| k.private_pem.clone()).collect::<Vec<_>>(),
        clear.iter().map(|k| k.private_pem.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_key_encryption_key_is_used_and_another_key_is_refused_at_start() {
    use base64::Engine;
    let secrets = tempfile::tempdir().unwrap();
    let kek = secrets.path().join("kek");
    std::fs::write(&kek, format!("{}\n", base64::engine::general_purpose::STANDARD.encode([42u8; 32]))).unwrap();
    let (file, data) = (kek.clone(), tempfile::tempdir().unwrap());
    let first = spawn_app_with(|s| s.key_encryption_key_file = Some(file)).await;
    assert!(!first.data_dir.path().join("key-encryption.key").exists(), "no key made when one is configured");
    assert!(stored_keys(&first).await.iter().all(|(_, pem)| pem.starts_with("v1:")));

    // A node with another key cannot read the keys: it says so and stops.
    let mut settings = crate::helpers::test_settings(data.path());
    settings.database_url = Some(first.settings.database_url());
    let other = secrets.path().join("other");
    std::fs::write(&other, base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap();
    settings.key_encryption_key_file = Some(other);
    let clock = std::sync::Arc::new(idp_core::clock::FixedClock::new(chrono::Utc::now()));
    let err = idp::app::Application::build(&settings, clock.clone()).await.err().expect("refused");
    assert!(format!("{err:#}").contains("key_encryption_key_file"), "{err:#}");
    // A configured file that does not exist is an error, not a new key.
    settings.key_encryption_key_file = Some(secrets.path().join("absent"));
    let err = idp::app::Application::build(&settings, clock).await.err().expect("refused");
    assert!(format!("{err:#}").contains("absent"), "{err:#}");
    assert!(!secrets.path().join("absent").exists());
}
