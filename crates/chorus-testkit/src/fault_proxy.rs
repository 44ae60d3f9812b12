//! A fault-injecting HTTP/1.1 proxy for the path between Chorus and a fake
//! (Discord, a subscriber's receiver): it forwards requests one by one and,
//! where the script says so, resets the connection, stalls, cuts an answer
//! short, or refuses everything for an outage.
//!
//! It works on bytes, not on a parsed HTTP stack, so a fault is exactly
//! what a network does: a reset is a TCP RST (zero linger), a truncated
//! answer is the first bytes of the real one followed by a close, a stall is
//! silence until the client gives up.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tokio_util::sync::CancellationToken;

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Reset the connection once the request is in; nothing reaches the
    /// upstream.
    Reset,
    /// Forward the request and read the upstream's answer, then reset the
    /// client's connection: the upstream acted, the client cannot know.
    ResetAfterForward,
    /// Take the request and say nothing, until the client gives up; nothing
    /// reaches the upstream.
    Stall,
    /// Forward the request, then hold the answer until the client gives up.
    StallAfterForward,
    /// Forward the request, relay only this many bytes of the answer, then
    /// close the connection.
    Truncate(usize),
}

/// One request the proxy handled.
#[derive(Debug, Clone)]
pub struct Handled {
    /// Request line, e.g. `POST /api/v10/channels/1/messages HTTP/1.1`.
    pub request_line: String,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
    /// Refused because an outage was on.
    pub outage: bool,
    /// Whether the request reached the upstream.
    pub forwarded: bool,
    /// The upstream's status, when it answered.
    pub upstream_status: Option<u16>,
}

struct Shared {
    upstream: SocketAddr,
    script: Mutex<VecDeque<Fault>>,
    outage: AtomicBool,
    handled: Mutex<Vec<Handled>>,
    count: watch::Sender<usize>,
    stop: CancellationToken,
}

impl Shared {
    fn record(&self, h: Handled) {
        let n = {
            let mut handled = self.handled.lock().unwrap();
            handled.push(h);
            handled.len()
        };
        self.count.send_replace(n);
    }
}

/// A fault-injecting proxy in front of one upstream address.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

impl FaultProxy {
    /// Listen on a loopback port, forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream.parse().expect("upstream as ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fault proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            script: Mutex::new(VecDeque::new()),
            outage: AtomicBool::new(false),
            handled: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            stop: CancellationToken::new(),
        });
        let s = shared.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = s.stop.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((client, _)) = accepted else { continue };
                let s = s.clone();
                tokio::spawn(async move {
                    let stop = s.stop.clone();
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = serve(s, client) => {}
                    }
                });
            }
        });
        Self { addr, shared }
    }

    /// `host:port` to point a client (or twilight's proxy setting) at.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// `http://host:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queue faults, one per request in arrival order; requests after them
    /// pass through.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.script.lock().unwrap().extend(faults);
    }

    /// Faults still queued.
    pub fn script_left(&self) -> usize {
        self.shared.script.lock().unwrap().len()
    }

    /// Start an outage: every connection and request is reset until
    /// [`FaultProxy::end_outage`].
    pub fn begin_outage(&self) {
        self.shared.outage.store(true, Ordering::SeqCst);
    }

    /// End an outage.
    pub fn end_outage(&self) {
        self.shared.outage.store(false, Ordering::SeqCst);
    }

    /// Every request handled so far, in order.
    pub fn handled(&self) -> Vec<Handled> {
        self.shared.handled.lock().unwrap().clone()
    }

    /// Wait until `n` requests have been handled, or panic after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Handled> {
        let mut rx = self.shared.count.subscribe();
        let ok = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await.is_ok();
        let got = self.handled();
        assert!(ok, "timed out waiting for {n} requests at the fault proxy; have {}", got.len());
        got
    }
}

/// Close with a TCP reset rather than a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Wait until the peer closes (or the proxy stops, which drops this task).
async fn hold(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
}

async fn serve(shared: Arc<Shared>, client: TcpStream) {
    if shared.outage.load(Ordering::SeqCst) {
        shared.record(Handled {
            request_line: String::new(),
            fault: None,
            outage: true,
            forwarded: false,
            upstream_status: None,
        });
        return reset(client);
    }
    let mut client = Framed::new(client);
    let mut upstream: Option<Framed> = None;
    loop {
        let Ok(Some(request)) = client.read_message(None).await else { return };
        let request_line = first_line(&request);
        let mut handled =
            Handled { request_line, fault: None, outage: false, forwarded: false, upstream_status: None };
        if shared.outage.load(Ordering::SeqCst) {
            handled.outage = true;
            shared.record(handled);
            return reset(client.stream);
        }
        let fault = shared.script.lock().unwrap().pop_front();
        handled.fault = fault;
        match fault {
            Some(Fault::Reset) => {
                shared.record(handled);
                return reset(client.stream);
            }
            Some(Fault::Stall) => {
                shared.record(handled);
                return hold(&mut client.stream).await;
            }
            _ => {}
        }
        let up = match upstream.as_mut() {
            Some(u) => u,
            None => match TcpStream::connect(shared.upstream).await {
                Ok(s) => upstream.insert(Framed::new(s)),
                Err(_) => {
                    shared.record(handled);
                    return reset(client.stream);
                }
            },
        };
        let method = request.split(|b| *b == b' ').next().unwrap_or_default().to_vec();
        let answer = match up.stream.write_all(&request).await {
            Ok(()) => up.read_message(Some(&method)).await,
            Err(e) => Err(e),
        };
        handled.forwarded = true;
        let Ok(Some(answer)) = answer else {
            shared.record(handled);
            return reset(client.stream);
        };
        handled.upstream_status = status_of(&answer);
        shared.record(handled);
        match fault {
            Some(Fault::ResetAfterForward) => return reset(client.stream),
            Some(Fault::StallAfterForward) => return hold(&mut client.stream).await,
            Some(Fault::Truncate(n)) => {
                let _ = client.stream.write_all(&answer[..n.min(answer.len().saturating_sub(1))]).await;
                let _ = client.stream.shutdown().await;
                return;
            }
            _ => {
                if client.stream.write_all(&answer).await.is_err() {
                    return;
                }
                if closes(&request) || closes(&answer) {
                    let _ = client.stream.shutdown().await;
                    return;
                }
            }
        }
    }
}

fn first_line(message: &[u8]) -> String {
    let end = message.windows(2).position(|w| w == b"\r\n").unwrap_or(message.len());
    String::from_utf8_lossy(&message[..end]).into_owned()
}

/// Whether a message's head says `Connection: close`.
fn closes(message: &[u8]) -> bool {
    let end = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(message.len());
    String::from_utf8_lossy(&message[..end])
        .to_ascii_lowercase()
        .lines()
        .any(|l| l.split_once(':').is_some_and(|(k, v)| k.trim() == "connection" && v.trim() == "close"))
}

fn status_of(answer: &[u8]) -> Option<u16> {
    first_line(answer).split(' ').nth(1)?.parse().ok()
}

/// A stream read one HTTP/1.1 message at a time, keeping what was read past
/// the message's end for the next.
struct Framed {
    stream: TcpStream,
    buf: Vec<u8>,
}

const MAX_HEAD: usize = 64 * 1024;

impl Framed {
    fn new(stream: TcpStream) -> Self {
        Self { stream, buf: Vec::new() }
    }

    /// Read more into the buffer; `false` at end of stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Take exactly `n` bytes (reading as needed) onto `out`.
    async fn take(&mut self, n: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        out.extend(self.buf.drain(..n));
        Ok(())
    }

    /// Take one CRLF-terminated line onto `out`, answering it.
    async fn line(&mut self, out: &mut Vec<u8>) -> std::io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                out.extend(self.buf.drain(..end + 2));
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD || !self.fill().await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// One whole message, head and body, as raw bytes; `None` when the
    /// stream ends cleanly before one starts. `request_method` is `None`
    /// for a request, or the method of the request a response answers.
    async fn read_message(&mut self, request_method: Option<&[u8]>) -> std::io::Result<Option<Vec<u8>>> {
        while !self.buf.windows(4).any(|w| w == b"\r\n\r\n") {
            if self.buf.len() > MAX_HEAD {
                return Err(std::io::ErrorKind::InvalidData.into());
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
        let end = self.buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut message: Vec<u8> = self.buf.drain(..end).collect();
        let head = String::from_utf8_lossy(&message).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_owned())
            })
        };
        let bodiless = request_method.is_some_and(|m| {
            let status = status_of(&message).unwrap_or(200);
            m == b"HEAD" || (100..200).contains(&status) || status == 204 || status == 304
        });
        if bodiless {
            return Ok(Some(message));
        }
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let size_line = self.line(&mut message).await?;
                let hex = size_line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(hex, 16).map_err(|_| std::io::ErrorKind::InvalidData)?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !self.line(&mut message).await?.is_empty() {}
                    return Ok(Some(message));
                }
                self.take(size + 2, &mut message).await?;
            }
        }
        if let Some(len) = header("content-length") {
            let len: usize = len.parse().map_err(|_| std::io::ErrorKind::InvalidData)?;
            self.take(len, &mut message).await?;
        } else if request_method.is_some() {
            // A response without a length runs to the end of the stream.
            message.append(&mut self.buf);
            while self.fill().await? {
                message.append(&mut self.buf);
            }
        }
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn upstream() -> (SocketAddr, Arc<Mutex<usize>>) {
        let hits = Arc::new(Mutex::new(0));
        let h = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let h = h.clone();
            async move {
                *h.lock().unwrap() += 1;
                "hello from upstream"
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, hits)
    }

    async fn exchange(addr: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(request).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok(out)
    }

    const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

    #[tokio::test]
    async fn each_fault_does_what_it_says() {
        let (up, hits) = upstream().await;
        let proxy = FaultProxy::start(&up.to_string()).await;
        let addr = proxy.host_port();
        proxy.script([Fault::Reset, Fault::ResetAfterForward, Fault::Truncate(12)]);

        let reset = exchange(&addr, GET).await;
        assert_eq!(reset.map_err(|e| e.kind()).err(), Some(std::io::ErrorKind::ConnectionReset));
        assert_eq!(*hits.lock().unwrap(), 0, "a reset before forwarding reaches nothing");

        let after = exchange(&addr, GET).await;
        assert_eq!(after.map_err(|e| e.kind()).err(), Some(std::io::ErrorKind::ConnectionReset));
        assert_eq!(*hits.lock().unwrap(), 1, "the upstream acted");

        let cut = exchange(&addr, GET).await.unwrap();
        assert_eq!(cut, b"HTTP/1.1 200");

        let whole = String::from_utf8(exchange(&addr, GET).await.unwrap()).unwrap();
        assert!(whole.starts_with("HTTP/1.1 200") && whole.ends_with("hello from upstream"), "{whole}");

        proxy.begin_outage();
        assert!(exchange(&addr, GET).await.is_err());
        proxy.end_outage();
        assert!(exchange(&addr, GET).await.is_ok());
        let handled = proxy.handled();
        let faults: Vec<_> = handled.iter().map(|h| (h.fault, h.outage, h.forwarded)).collect();
        assert_eq!(
            faults,
            [
                (Some(Fault::Reset), false, false),
                (Some(Fault::ResetAfterForward), false, true),
                (Some(Fault::Truncate(12)), false, true),
                (None, false, true),
                (None, true, false),
                (None, false, true),
            ]
        );
    }

    #[tokio::test]
    async fn a_stall_holds_until_the_client_gives_up_and_keep_alive_carries_on() {
        let (up, hits) = upstream().await;
        let proxy = FaultProxy::start(&up.to_string()).await;
        proxy.script([Fault::StallAfterForward]);
        let mut s = TcpStream::connect(proxy.host_port()).await.unwrap();
        s.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        proxy.wait_for(1, Duration::from_secs(10)).await;
        let mut buf = [0u8; 64];
        let silent = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
        assert!(silent.is_err(), "a stalled answer says nothing");
        assert_eq!(*hits.lock().unwrap(), 1);

        // Two requests on one kept-alive connection both pass.
        let mut s = TcpStream::connect(proxy.host_port()).await.unwrap();
        s.write_all(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}").await.unwrap();
        s.write_all(GET).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert_eq!(out.matches("hello from upstream").count(), 2, "{out}");
        assert_eq!(*hits.lock().unwrap(), 3);
    }
}
