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
