//! The ingress baseline: a minimal hyper server that reads the body,
//! verifies the same HMAC as a GitHub hook and answers 202, storing nothing.

use std::io::Write as _;

use bytes::Bytes;
use chorus_core::{Clock, Secret, Source, SystemClock};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, service::service_fn};
use hyper_util::rt::TokioIo;

pub(crate) async fn serve(secret: String) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    let secret = std::sync::Arc::new([Secret::new(secret)]);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let secret = secret.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let secret = secret.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await?.to_bytes();
                    let status = match chorus_verify::verify(
                        Source::Github,
                        None,
                        &*secret,
                        &parts.headers,
                        &body,
                        SystemClock.now(),
                    ) {
                        Ok(()) => StatusCode::ACCEPTED,
                        Err(_) => StatusCode::FORBIDDEN,
                    };
                    let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
                    *resp.status_mut() = status;
                    Ok::<_, hyper::Error>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
