//! The HTTP server itself: a client that trickles its request head or
//! idles on a keep-alive connection is disconnected, and connections beyond
//! the cap get a 503.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app_with;

/// Far longer than the 1 s timeout of these tests: reaching it means the
/// server kept the connection.
const BOUND: Duration = Duration::from_secs(20);

/// Reads until the server closes the connection; what it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(BOUND, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&all).into_owned(),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open; it sent {:?}", String::from_utf8_lossy(&all)),
        }
    }
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    let app = spawn_app_with(|s| s.server.header_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a").await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with(|s| s.server.header_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    // The answer comes, then nothing more is asked: the server closes.
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("ok\n"), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_cap_get_a_503() {
    let app = spawn_app_with(|s| s.server.max_connections = 2).await;
    let mut first = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let _second = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    // Connections are accepted in order: the third finds both places taken.
    let mut third = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let refused = read_until_closed(&mut third).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("Serveur surchargé"), "{refused}");

    // The connections within the cap are served.
    first.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.unwrap();
    let served = read_until_closed(&mut first).await;
    assert!(served.starts_with("HTTP/1.1 200 OK"), "{served}");

    // Its place is free again once it has ended (the server notices the
    // end a moment after the client does).
    let mut answers = Vec::new();
    for _ in 0..200 {
        let mut next = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        next.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.unwrap();
        let answer = read_until_closed(&mut next).await;
        if answer.starts_with("HTTP/1.1 200 OK") {
            return;
        }
        answers.push(answer);
        tokio::task::yield_now().await;
    }
    panic!("no place freed: {answers:?}");
}

#[tokio::test]
async fn metrics_answer_the_machine_itself_and_trusted_proxies_only() {
    let get = |app: &crate::helpers::TestApp, forwarded: Option<&'static str>| {
        let mut request = reqwest::Client::new().get(app.url("/metrics"));
        if let Some(address) = forwarded {
            request = request.header("x-forwarded-for", address);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // The test client connects from 127.0.0.1.
    let app = spawn_app_with(|_| {}).await;
    assert_eq!(get(&app, None).await, 200);
    // A local reverse proxy that is not listed relays an outside client.
    assert_eq!(get(&app, Some("203.0.113.7")).await, 403);

    // Behind a trusted proxy: its own requests pass, relayed ones do not.
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    assert_eq!(get(&app, None).await, 200);
    assert_eq!(get(&app, Some("203.0.113.7")).await, 403);
    assert_eq!(get(&app, Some("127.0.0.1")).await, 200);
}

#[tokio::test]
async fn metrics_on_a_listener_of_their_own() {
    let data = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(data.path());
    settings.server.metrics_bind = Some("127.0.0.1:0".into());
    let clock = std::sync::Arc::new(idp_core::clock::FixedClock::new(chrono::Utc::now()));
    let app = idp::app::Application::build(&settings, clock).await.unwrap();
    let (port, metrics_port) = (app.port(), app.metrics_port().expect("a metrics listener"));
    tokio::spawn(app.run_until(std::future::pending()));

    let status = |port: u16, path: &'static str| async move {
        let r = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.unwrap();
        (r.status().as_u16(), r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()))
    };
    let (code, content_type) = status(metrics_port, "/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(content_type.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(status(metrics_port, "/cas/login").await.0, 404, "the metrics listener serves nothing else");
    assert_eq!(status(port, "/metrics").await.0, 404, "the main listener no longer serves them");
    assert_eq!(status(port, "/healthz").await.0, 200);
}
