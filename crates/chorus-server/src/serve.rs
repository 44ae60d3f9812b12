//! The HTTP side's connection handling: HTTP/1 over each accepted
//! connection, with limits that keep slow and idle clients from holding the
//! server. A client gets `header_timeout` to send a request's headers (and
//! to start its next one on a kept-alive connection), and `body_timeout` to
//! send its body; past `max_connections` held at once, a new connection is
//! answered 503 with `Retry-After` and closed.
//!
//! A new connection's first request head is read into a small buffer of its
//! own before hyper takes the connection: hyper gives each connection two
//! 8 KiB buffers at once, so thousands of clients that send half a head and
//! wait would otherwise hold tens of megabytes until the timeout cut them.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo};
use bytes::Bytes;
use http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Limits on client connections; see the module's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a request's headers, or to start the next request.
    pub header_timeout: Duration,
    /// Time to send a request's body.
    pub body_timeout: Duration,
    /// Connections held at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// What a connection past the cap reads before it is closed.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n\
Content-Length: 80\r\nConnection: close\r\n\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections; retry shortly\"}}";

/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(20);

/// Serve `app` on `listener` until `shutdown`, then stop accepting and let
/// requests in flight finish (up to 20 s).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, say: the next accept may succeed
                    // once connections close; do not spin meanwhile.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(BUSY)).await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let app = app.clone();
        let watcher = graceful.watcher();
        // A small task of its own: the one that serves the connection is
        // sized for hyper's whole connection state from the start.
        tokio::spawn(async move {
            let Some(head) = first_head(stream, limits.header_timeout).await else {
                drop(permit);
                return;
            };
            let body_timeout = limits.body_timeout;
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let request = request.map(|body| Body::new(Timed::new(body, body_timeout)));
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.oneshot(request).await.unwrap_or_else(|e| match e {})) }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            let connection = watcher.watch(http.serve_connection(TokioIo::new(head), service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                drop(permit);
            });
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown: requests still in flight were abandoned");
    }
    Ok(())
}

/// Largest first head read before hyper takes over (and applies its own
/// limits to what follows).
const HEAD_BUFFER: usize = 16 * 1024;

/// Read until the first request head is complete (or `HEAD_BUFFER` is
/// full), within `limit`; `None` when the client closes or is too slow.
async fn first_head(mut stream: TcpStream, limit: Duration) -> Option<Prefixed> {
    let mut read = Vec::new();
    let reading = async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            let from = read.len().saturating_sub(3);
            read.extend_from_slice(&chunk[..n]);
            if read[from..].windows(4).any(|w| w == b"\r\n\r\n") || read.len() >= HEAD_BUFFER {
                return Some(());
            }
        }
    };
    tokio::time::timeout(limit, reading).await.ok().flatten()?;
    Some(Prefixed { read, at: 0, stream })
}

/// A connection whose first bytes were already read: they are read again
/// first, then the stream.
struct Prefixed {
    read: Vec<u8>,
    at: usize,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.read.len() {
            let n = buf.remaining().min(this.read.len() - this.at);
            buf.put_slice(&this.read[this.at..this.at + n]);
            this.at += n;
            if this.at == this.read.len() {
                this.read = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A request body that must arrive within a time limit; past it, reading
/// fails (and the connection is closed after the answer).
struct Timed {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Timed {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep(limit)) }
    }
}

/// The body took longer than the server allows.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within the time allowed")]
struct BodyTimeout;

impl hyper::body::Body for Timed {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
