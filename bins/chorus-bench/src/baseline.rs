//! The ingress baselines: a minimal hyper server that reads the body,
//! verifies the same HMAC as a GitHub hook and answers 202. The plain one
//! stores nothing; the durable one is the cheapest honest "acknowledged
//! means on disk": it appends each body to a file and answers only after
//! one `fdatasync` for every group of requests that waited together.

use std::io::Write as _;

use bytes::Bytes;
use chorus_core::{Clock, Secret, Source, SystemClock};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, service::service_fn};
use hyper_util::rt::TokioIo;

/// A body to append, and where to say it is on disk.
type Append = (Bytes, tokio::sync::oneshot::Sender<std::io::Result<()>>);

/// Append what waits, `fdatasync` once, answer them all; again.
fn writer(dir: &std::path::Path, rx: &std::sync::mpsc::Receiver<Append>) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("baseline.log"))?;
    let mut group: Vec<Append> = Vec::new();
    while let Ok(first) = rx.recv() {
        group.push(first);
        group.extend(rx.try_iter());
        let mut written = Ok(());
        for (body, _) in &group {
            written = written
                .and_then(|()| file.write_all(&(body.len() as u32).to_le_bytes()))
                .and_then(|()| file.write_all(body));
        }
        let failed = written.and_then(|()| file.sync_data()).err().map(|e| e.kind());
        for (_, done) in group.drain(..) {
            let _ = done.send(failed.map_or(Ok(()), |kind| Err(kind.into())));
        }
    }
    Ok(())
}

pub(crate) async fn serve(secret: String, durable: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let appends = match durable {
        Some(dir) => {
            let (tx, rx) = std::sync::mpsc::channel::<Append>();
            std::thread::spawn(move || writer(&dir, &rx));
            Some(tx)
        }
        None => None,
    };
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
        let appends = appends.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let secret = secret.clone();
                let appends = appends.clone();
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
                    let status = match appends {
                        Some(tx) if status == StatusCode::ACCEPTED => {
                            let (done, on_disk) = tokio::sync::oneshot::channel();
                            let _ = tx.send((body, done));
                            match on_disk.await {
                                Ok(Ok(())) => status,
                                _ => StatusCode::SERVICE_UNAVAILABLE,
                            }
                        }
                        _ => status,
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
