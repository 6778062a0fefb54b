//! The router in-process: requests go through `tower::ServiceExt::oneshot`
//! on the real router built with in-memory adapters (a SQLite database in
//! memory, in-memory tickets and sessions), with no listener and no HTTP
//! client. Quick checks of how the web layer renders the answers of the
//! lower layers, beside the black-box tests of the other modules.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use tower::ServiceExt;

use idp::app::Application;
use idp_core::clock::FixedClock;
use idp_core::service::{Service, ServiceId, UrlPattern};

use crate::helpers::test_settings;

const SERVICE: &str = "https://cahier-de-textes.example.test/";

/// The router over in-memory adapters, and the folder it keeps its keys in.
async fn router() -> (axum::Router, Application, tempfile::TempDir) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data_dir.path());
    settings.database_url = Some("sqlite::memory:".to_owned());
    let app = Application::build(&settings, Arc::new(FixedClock::new(Utc::now()))).await.unwrap();
    (app.router(), app, data_dir)
}

async fn call(router: &axum::Router, request: Request<Body>) -> (StatusCode, Option<String>, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let location = response.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, location, String::from_utf8_lossy(&body).into_owned())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn an_unregistered_service_gets_a_french_page_and_no_redirect() {
    let (router, _app, _dir) = router().await;
    let (status, location, body) = call(&router, get("/cas/login?service=https%3A%2F%2Fevil.example%2F")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(location.is_none());
    assert!(body.contains("Application non autorisée") && body.contains("CAS0002"), "{body}");
}

#[tokio::test]
async fn an_unknown_response_method_is_cas0003() {
    let (router, app, _dir) = router().await;
    let service = Service {
        id: ServiceId::parse("cdt").unwrap(),
        name: "Cahier de textes".into(),
        url_pattern: UrlPattern::parse(r"https://cahier-de-textes\.example\.test/.*").unwrap(),
        attributes: vec![],
        logout_url: None,
        evaluation_order: 0,
        policy: Default::default(),
    };
    app.stores.services.add(service).await.unwrap();
    let uri = format!(
        "/cas/login?service={}&method=PUT",
        url::form_urlencoded::byte_serialize(SERVICE.as_bytes()).collect::<String>()
    );
    let (status, _, body) = call(&router, get(&uri)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("CAS0003"), "{body}");
}

#[tokio::test]
async fn a_form_without_its_token_is_refused_before_its_handler() {
    let (router, _app, _dir) = router().await;
    let request = Request::post("/cas/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("username=c.martin&password=Bonjour-2026%21"))
        .unwrap();
    let (status, _, body) = call(&router, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("Page expirée") && body.contains("WEB0004"), "{body}");
}

#[tokio::test]
async fn validation_answers_in_cas_xml_and_unknown_paths_in_french() {
    let (router, _app, _dir) = router().await;
    let (status, _, body) =
        call(&router, get("/cas/p3/serviceValidate?ticket=ST-x&service=https%3A%2F%2Fa.example%2F")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"code="INVALID_TICKET""#), "{body}");
    let (status, _, body) = call(&router, get("/nulle-part")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("Page introuvable"), "{body}");
}
