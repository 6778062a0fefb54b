//! `idp healthcheck [URL]`: asks `/readyz` of a running server and exits 0
//! when it answers 200, for a container's HEALTHCHECK (the image has no
//! shell tools). Plain HTTP/1.0 on a TCP connection, 3 s at most.

use anyhow::{Context, bail};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::settings::Settings;

/// The whole exchange may take this long.
const LIMIT: Duration = Duration::from_secs(3);

/// The URL asked: `url` (with `/readyz` when it has no path), else
/// `/readyz` on the bind address of the settings, a wildcard address
/// (`0.0.0.0`, `[::]`) read as loopback.
pub fn target(url: Option<&str>, settings: &Settings) -> anyhow::Result<url::Url> {
    let raw = match url {
        Some(url) => url.to_owned(),
        None => {
            let bind = settings.bind.replace("0.0.0.0:", "127.0.0.1:").replace("[::]:", "[::1]:");
            format!("http://{bind}/readyz")
        }
    };
    let mut url = url::Url::parse(&raw).with_context(|| format!("'{raw}' is not a URL"))?;
    if url.scheme() != "http" {
        bail!("'{raw}': http only (ask the node itself, not the load balancer)");
    }
    if url.path() == "/" {
        url.set_path("/readyz");
    }
    Ok(url)
}

/// Asks `url`; Ok when the answer is 200, else an error saying what came.
pub async fn check(url: &url::Url) -> anyhow::Result<()> {
    let status = tokio::time::timeout(LIMIT, status_line(url))
        .await
        .with_context(|| format!("{url}: no answer within {} s", LIMIT.as_secs()))??;
    if status.split(' ').nth(1) != Some("200") {
        bail!("{url}: {status}");
    }
    Ok(())
}

async fn status_line(url: &url::Url) -> anyhow::Result<String> {
    let host = url.host_str().context("a host is needed")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let mut stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .with_context(|| format!("{url}: cannot connect"))?;
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let request = format!("GET {target} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: idp-healthcheck\r\n\r\n");
    stream.write_all(request.as_bytes()).await.with_context(|| format!("{url}: cannot send"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).await.with_context(|| format!("{url}: cannot read"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}
