//! The HTTP/1.1 accept loop: hyper with a Tokio timer, so that a client
//! that trickles its request head (slowloris) or keeps an idle connection
//! is disconnected, a cap on open connections, and a graceful shutdown that
//! lets requests in flight end.

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// What a connection may take.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time to send a whole request head, counted from the connection or
    /// from the end of the previous response (so it also bounds idle
    /// keep-alive connections).
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// After shutdown is asked, the longest wait for requests in flight;
    /// connections still open then are dropped.
    pub drain: Duration,
}

/// The answer to a connection over the cap, written before closing it.
const OVERLOADED: &[u8] = "HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 46\r\n\
\r\n\
Serveur surchargé, réessayez dans un instant.\n"
    .as_bytes();

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, asks every open connection to close after its current
/// request, and waits for them (`limits.drain` at most).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let max = u32::try_from(limits.max_connections).unwrap_or(u32::MAX).max(1);
    let permits = Arc::new(Semaphore::new(max as usize));
    let (closing, closing_rx) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream);
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let mut closing = closing_rx.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let closed = async move {
                let _ = closing.wait_for(|closing| *closing).await;
            };
            tokio::select! {
                result = connection.as_mut() => log_end(result),
                () = closed => {
                    connection.as_mut().graceful_shutdown();
                    log_end(connection.await);
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a permit until it ends.
    if tokio::time::timeout(limits.drain, permits.acquire_many(max)).await.is_err() {
        let open = max as usize - permits.available_permits();
        tracing::warn!(target: "idp::http", open, "connections still open at the end of the drain, dropped");
    }
}

/// A connection over the cap: a 503 if the socket takes it at once, then
/// closed. Nothing waits on the client.
fn refuse(stream: TcpStream) {
    metrics::counter!("idp_connections_refused_total").increment(1);
    let _ = stream.try_write(OVERLOADED);
}

/// Errors of one connection (the client went away, timed out) are the
/// client's business: logged at debug level.
fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(target: "idp::http", error = %e, "connection ended");
    }
}

/// A failed `accept`: a connection reset before it was accepted is
/// skipped; anything else (out of file descriptors) pauses the loop for a
/// second rather than spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(target: "idp::http", error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
