//! The account flows on two nodes sharing the database and Redis
//! (`IDP_TEST_REDIS_URL`): an activation started on one node continues on
//! the other, where the e-mail link is opened.

use crate::account_helpers::{get_with, last_link, post, post_with, start, text};
use crate::helpers::{browser, spawn_app_with};

fn redis_url() -> Option<String> {
    let url = std::env::var("IDP_TEST_REDIS_URL").ok().filter(|v| !v.trim().is_empty());
    if url.is_none() {
        assert_ne!(std::env::var("IDP_TEST_REQUIRE_SERVICES").as_deref(), Ok("1"), "IDP_TEST_REDIS_URL not set");
        eprintln!("skipped: IDP_TEST_REDIS_URL not set (Redis tests need it)");
    }
    url
}

#[tokio::test]
async fn an_activation_started_on_one_node_ends_on_the_other() {
    let Some(redis) = redis_url() else { return };
    let prefix = format!("idp-test-{}:", idp_core::secret::random_token(12).unwrap().to_lowercase());
    let (url, p) = (redis.clone(), prefix.clone());
    let a = spawn_app_with(move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = p;
    })
    .await;
    let sqlite = format!("sqlite://{}?mode=rwc", a.data_dir.path().join("idp.db").display());
    let b = spawn_app_with(move |s| {
        s.database_url = Some(sqlite);
        s.redis_url = Some(redis);
        s.redis_prefix = prefix;
    })
    .await;
    a.provisioned_account("l.petit", "Prov1soire").await;
    assert_eq!(start(&a, "l.petit", "Prov1soire", "").await.status, 303);
    post(&a, "/compte/activation", "/compte/activation/cgu", &[("accepte", "oui")]).await;
    let r = post(
        &a,
        "/compte/activation",
        "/compte/activation/courriel",
        &[("courriel", "p@example.fr"), ("courriel_confirmation", "p@example.fr")],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let link = last_link(&a, "/compte/activation/courriel");
    // The phone reaches node B.
    let phone = browser();
    assert!(text(&get_with(&phone, &b, &link).await).contains("Validation de votre adresse personnelle"));
    assert_eq!(post_with(&phone, &b, &link, "/compte/activation/courriel/confirmer", &[]).await.status, 303);
    let r = post_with(
        &phone,
        &b,
        "/compte/activation",
        "/compte/activation/mot-de-passe",
        &[("mot_de_passe", "Vélo-Rouge-27"), ("confirmation", "Vélo-Rouge-27")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(text(&r).contains("Compte activé !"));
    // The code was spent on B: A knows it too.
    assert_eq!(get_with(&browser(), &a, &link).await.status, 410);
}

/// The account tables on PostgreSQL (`IDP_TEST_DATABASE_URL`): activation
/// with secret questions, recovery by them, "Mon compte" and the login
/// history, on a fresh database.
#[tokio::test(flavor = "multi_thread")]
async fn the_account_flows_work_on_postgresql() {
    use sea_orm::ConnectionTrait;
    let Some(admin_url) = std::env::var("IDP_TEST_DATABASE_URL").ok().filter(|v| !v.trim().is_empty()) else {
        assert_ne!(std::env::var("IDP_TEST_REQUIRE_SERVICES").as_deref(), Ok("1"), "IDP_TEST_DATABASE_URL not set");
        eprintln!("skipped: IDP_TEST_DATABASE_URL not set (PostgreSQL tests need it)");
        return;
    };
    let name = format!("idp_t_{}", idp_core::secret::random_token(12).unwrap().to_lowercase());
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    let db_url = url.to_string();
    let app = spawn_app_with(move |s| s.database_url = Some(db_url)).await;

    app.provisioned_account("l.petit", "Prov1soire").await;
    crate::account_helpers::activate_with_questions(&app, "l.petit", "Prov1soire", "Vélo-Rouge-27").await;
    let other = browser();
    let r = post_with(
        &other,
        &app,
        "/compte/mot-de-passe-oublie",
        "/compte/mot-de-passe-oublie/reponses",
        &[("identifiant", "l.petit"), ("reponse1", "medor"), ("reponse2", "saint etienne")],
    )
    .await;
    assert_eq!(r.status, 401, "hyphens count: {}", r.body);
    let r = post_with(
        &other,
        &app,
        "/compte/mot-de-passe-oublie",
        "/compte/mot-de-passe-oublie/reponses",
        &[("identifiant", "l.petit"), ("reponse1", "MEDOR"), ("reponse2", "saint-étienne")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A login recorded in the history, shown in "Mon compte".
    let laptop = browser();
    let login = post_with(
        &laptop,
        &app,
        "/cas/login?profile=eleve-parent",
        "/cas/login",
        &[("username", "l.petit"), ("password", "Vélo-Rouge-27")],
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let page = text(&get_with(&laptop, &app, "/compte/").await);
    assert!(page.contains("depuis l'adresse 127.0.0.1"), "{page}");
    // Deleting the account deletes its rows (foreign keys).
    let login = idp_core::account::Login::parse("l.petit").unwrap();
    let id = app.stores.accounts.find_by_login(&login).await.unwrap().unwrap().id;
    assert!(app.stores.security.get(id).await.unwrap().questions.is_some());
    assert!(app.stores.accounts.delete(&login).await.unwrap());
    assert_eq!(app.stores.security.get(id).await.unwrap(), idp_core::lifecycle::AccountExtras::default());
    assert!(app.stores.security.recent_logins(id, 10).await.unwrap().is_empty());
    drop(app);
    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
}

/// `put_if_absent` on Redis (`SET NX`): two nodes storing the same key at
/// once, only one does (the SAML assertion-id replay cache relies on it).
#[tokio::test]
async fn of_two_nodes_putting_the_same_ephemeral_key_only_one_stores_it() {
    use idp_core::ports::EphemeralStore;
    use idp_store::ephemeral::RedisEphemeral;
    use idp_store::redis_store::Redis;
    let Some(redis) = redis_url() else { return };
    let prefix = format!("idp-test-{}:", idp_core::secret::random_token(12).unwrap().to_lowercase());
    let a = RedisEphemeral(Redis::connect(&redis, &prefix).await.unwrap());
    let b = RedisEphemeral(Redis::connect(&redis, &prefix).await.unwrap());
    let ttl = std::time::Duration::from_secs(60);
    for round in 0..20 {
        let key = format!("seen-{round}");
        let (x, y) = tokio::join!(a.put_if_absent(&key, "a".into(), ttl), b.put_if_absent(&key, "b".into(), ttl));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x ^ y, "round {round}: exactly one node stores the key ({x}, {y})");
        let kept = a.get(&key).await.unwrap();
        assert_eq!(kept.as_deref(), Some(if x { "a" } else { "b" }));
    }
}
