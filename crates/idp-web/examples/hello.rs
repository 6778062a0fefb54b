//! The ceiling of the load figures: an axum hello-world on the same tokio
//! runtime and HTTP/1 stack as idp, built by `scripts/load.sh` and run in
//! the same run as the server, so that their ratio does not depend on how
//! busy the machine is. Usage: `hello 127.0.0.1:18090`.

use axum::{Router, routing::get};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    let app = Router::new().route("/", get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}
