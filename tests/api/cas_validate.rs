//! Service ticket validation: every protocol outcome, every format.

use idp_core::account::Profile;
use serde_json::Value;

use crate::helpers::{TestApp, assert_valid_cas_xml, spawn_app};

const SERVICE: &str = "https://vie-scolaire.example.test/login?next=%2Fnotes";
const PATTERN: &str = r"https://vie-scolaire\.example\.test/.*";

async fn app_with_ticket() -> (TestApp, String) {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service("vie-scolaire", PATTERN, &["uid", "given_name", "family_name", "school", "ENTPersonProfils"], None)
        .await;
    let r = app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let ticket = r.ticket();
    (app, ticket)
}

#[tokio::test]
async fn p3_service_validate_releases_the_service_attributes_and_is_schema_valid() {
    let (app, ticket) = app_with_ticket().await;
    let (status, ct, body) =
        app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/xml; charset=utf-8");
    assert_valid_cas_xml(&body);
    assert!(body.contains("<cas:user>c.martin</cas:user>"), "{body}");
    assert!(body.contains("<cas:isFromNewLogin>true</cas:isFromNewLogin>"));
    assert!(body.contains("<cas:given_name>Camille</cas:given_name>"));
    assert!(body.contains("<cas:ENTPersonProfils>National_ELV</cas:ENTPersonProfils>"));
    assert_eq!(body.matches("<cas:school>").count(), 2);
    // Only what the service lists leaves: no e-mail.
    assert!(!body.contains("email") && !body.contains("c.martin@example.fr"), "{body}");
}

#[tokio::test]
async fn a_ticket_is_single_use() {
    let (app, ticket) = app_with_ticket().await;
    let (_, _, first) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(first.contains("authenticationSuccess"));
    let (status, _, second) =
        app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_eq!(status, 200);
    assert_valid_cas_xml(&second);
    assert!(second.contains(r#"<cas:authenticationFailure code="INVALID_TICKET">"#), "{second}");
}

#[tokio::test]
async fn a_ticket_for_another_service_is_invalid_service_and_spent() {
    let (app, ticket) = app_with_ticket().await;
    let other = "https://vie-scolaire.example.test/autre";
    let (_, _, body) = app.validate("/cas/serviceValidate", &[("service", other), ("ticket", &ticket)]).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains(r#"code="INVALID_SERVICE""#), "{body}");
    let (_, _, again) = app.validate("/cas/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(again.contains(r#"code="INVALID_TICKET""#), "the ticket must be spent: {again}");
}

#[tokio::test]
async fn an_expired_ticket_is_invalid() {
    let (app, ticket) = app_with_ticket().await;
    app.clock.advance(chrono::Duration::seconds(11));
    let (_, _, body) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains(r#"code="INVALID_TICKET""#), "{body}");
    assert!(body.contains("expired"), "{body}");
}

#[tokio::test]
async fn a_ticket_just_within_its_lifetime_is_valid() {
    let (app, ticket) = app_with_ticket().await;
    app.clock.advance(chrono::Duration::seconds(10));
    let (_, _, body) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(body.contains("authenticationSuccess"), "{body}");
}

#[tokio::test]
async fn missing_parameters_are_invalid_request() {
    let (app, ticket) = app_with_ticket().await;
    for query in
        [vec![("service", SERVICE)], vec![("ticket", ticket.as_str())], vec![], vec![("service", ""), ("ticket", "")]]
    {
        let (status, _, body) = app.validate("/cas/p3/serviceValidate", &query).await;
        assert_eq!(status, 200);
        assert_valid_cas_xml(&body);
        assert!(body.contains(r#"code="INVALID_REQUEST""#), "{query:?}: {body}");
    }
}

#[tokio::test]
async fn a_validation_without_service_spends_the_ticket() {
    let (app, ticket) = app_with_ticket().await;
    let (_, _, body) = app.validate("/cas/p3/serviceValidate", &[("ticket", ticket.as_str())]).await;
    assert!(body.contains(r#"code="INVALID_REQUEST""#), "{body}");
    let (_, _, body) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(body.contains(r#"code="INVALID_TICKET""#), "spent by the first attempt: {body}");
}

#[tokio::test]
async fn a_ticket_that_is_not_a_service_ticket_is_invalid_ticket_spec() {
    let (app, _) = app_with_ticket().await;
    for t in ["PT-1-abc", "TGT-xyz", "garbage"] {
        let (_, _, body) = app.validate("/cas/serviceValidate", &[("service", SERVICE), ("ticket", t)]).await;
        assert_valid_cas_xml(&body);
        assert!(body.contains(r#"code="INVALID_TICKET_SPEC""#), "{t}: {body}");
    }
    let (_, _, body) = app.validate("/cas/serviceValidate", &[("service", SERVICE), ("ticket", "ST-unknown")]).await;
    assert!(body.contains(r#"code="INVALID_TICKET""#), "{body}");
}

#[tokio::test]
async fn renew_refuses_a_ticket_from_single_sign_on() {
    let (app, first) = app_with_ticket().await;
    // The first ticket came from the form: renew accepts it.
    let (_, _, body) =
        app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &first), ("renew", "true")]).await;
    assert!(body.contains("authenticationSuccess"), "{body}");
    // A ticket from the SSO session is refused when renew is asked.
    let sso = app.get_login(&[("service", SERVICE)]).await;
    assert_eq!(sso.status, 302);
    let ticket = sso.ticket();
    let (_, _, body) =
        app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket), ("renew", "true")]).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains(r#"code="INVALID_TICKET""#), "{body}");
}

#[tokio::test]
async fn a_ticket_from_single_sign_on_is_not_from_a_new_login() {
    let (app, first) = app_with_ticket().await;
    app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &first)]).await;
    let ticket = app.get_login(&[("service", SERVICE)]).await.ticket();
    let (_, _, body) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"), "{body}");
}

#[tokio::test]
async fn cas1_validate_answers_yes_or_no_in_text_with_a_charset() {
    let (app, ticket) = app_with_ticket().await;
    let (status, ct, body) = app.validate("/cas/validate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_eq!((status, ct.as_str(), body.as_str()), (200, "text/plain; charset=utf-8", "yes\nc.martin\n"));
    let (_, _, body) = app.validate("/cas/validate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_eq!(body, "no\n");
    let (_, _, body) = app.validate("/cas/validate", &[("service", SERVICE)]).await;
    assert_eq!(body, "no\n");
}

#[tokio::test]
async fn json_format() {
    let (app, ticket) = app_with_ticket().await;
    let (_, ct, body) =
        app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket), ("format", "JSON")]).await;
    assert_eq!(ct, "application/json; charset=utf-8");
    let json: Value = serde_json::from_str(&body).unwrap();
    let success = &json["serviceResponse"]["authenticationSuccess"];
    assert_eq!(success["user"], "c.martin");
    assert_eq!(success["attributes"]["family_name"], "Martin");
    assert_eq!(success["attributes"]["school"].as_array().unwrap().len(), 2);
    assert_eq!(success["attributes"]["isFromNewLogin"], true);
    let (_, _, body) =
        app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket), ("format", "JSON")]).await;
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["serviceResponse"]["authenticationFailure"]["code"], "INVALID_TICKET");
}

#[tokio::test]
async fn an_unknown_format_is_an_error_and_spends_the_ticket() {
    let (app, ticket) = app_with_ticket().await;
    let (_, ct, body) =
        app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket), ("format", "YAML")]).await;
    assert_eq!(ct, "application/xml; charset=utf-8");
    assert_valid_cas_xml(&body);
    assert!(body.contains(r#"code="INVALID_REQUEST""#), "{body}");
    let (_, _, body) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(body.contains(r#"code="INVALID_TICKET""#), "{body}");
}

#[tokio::test]
async fn a_proxy_callback_without_proxy_policy_is_unauthorized() {
    let (app, ticket) = app_with_ticket().await;
    let query =
        [("service", SERVICE), ("ticket", ticket.as_str()), ("pgtUrl", "https://vie-scolaire.example.test/pgt")];
    let (_, _, body) = app.validate("/cas/serviceValidate", &query).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains(r#"code="UNAUTHORIZED_SERVICE_PROXY""#), "{body}");
}

#[tokio::test]
async fn cas2_service_validate_is_schema_valid_too() {
    let (app, ticket) = app_with_ticket().await;
    let (_, _, body) = app.validate("/cas/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains("<cas:user>c.martin</cas:user>"));
}

#[tokio::test]
async fn a_removed_service_gets_nothing() {
    let (app, ticket) = app_with_ticket().await;
    app.stores.services.remove(&idp_core::service::ServiceId::parse("vie-scolaire").unwrap()).await.unwrap();
    let (_, _, body) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains(r#"code="INVALID_SERVICE""#), "{body}");
}

#[tokio::test]
async fn attribute_values_are_escaped() {
    let app = spawn_app().await;
    let hash = app.stores.hashing.hash(idp_core::secret::Secret::new("Bonjour-2026!")).await.unwrap();
    app.stores
        .accounts
        .create(idp_core::account::NewAccount {
            login: idp_core::account::Login::parse("o.brien").unwrap(),
            profile: Profile::Parent,
            given_name: "Seán <b>&".into(),
            family_name: "O'Brien".into(),
            email: None,
            schools: vec![],
            state: idp_core::account::AccountState::Active,
            password_hash: Some(hash),
            provisional_hash: None,
            cgu_version: Some("1".into()),
            attributes: Default::default(),
        })
        .await
        .unwrap();
    app.service("vie-scolaire", PATTERN, &["given_name", "family_name", "profile"], None).await;
    let ticket = app.login(Some(SERVICE), "o.brien", "Bonjour-2026!").await.ticket();
    let (_, _, body) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains("<cas:given_name>Seán &lt;b&gt;&amp;</cas:given_name>"), "{body}");
    assert!(body.contains("<cas:profile>parent</cas:profile>"), "{body}");
}

/// Found by the generated queries: a parameter given twice got a bare 400
/// ("Failed to deserialize query string") instead of a CAS answer.
#[tokio::test]
async fn a_parameter_given_twice_keeps_its_first_value() {
    let (app, ticket) = app_with_ticket().await;
    let query = [("service", SERVICE), ("service", "https://autre.example.test/"), ("ticket", &ticket)];
    let (status, _, body) = app.validate("/cas/p3/serviceValidate", &query).await;
    assert_eq!(status, 200);
    assert_valid_cas_xml(&body);
    assert!(body.contains("authenticationSuccess"), "{body}");
    let (status, _, body) = app.validate("/cas/proxyValidate", &[("pgtUrl", "x"), ("pgtUrl", "y")]).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"code="INVALID_REQUEST""#), "{body}");
}
