//! Slow and hostile clients against the built binary: thousands of
//! connections that send half a request and hold it keep no sender out, are
//! closed by the header timeout, and cost a bounded amount of memory each;
//! past the connection cap a new connection is answered 503 with
//! `Retry-After`.

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{TOKEN, WAIT, exe, init, post_signed, setup};

/// The soft limit on open files, from /proc (the test holds one descriptor
/// per slow connection; the server, another).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The process's peak resident memory, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Open a connection that sends half a request's headers and stops.
async fn half_request(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /webhook/builder/hk_slow HTTP/1.1\r\nHost: chorus\r\nContent-Length: 10\r\n")
        .await
        .unwrap();
    s
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_keep_no_sender_out() {
    init();
    let n = open_files_limit().map_or(1_000, |limit| limit.saturating_sub(1_000)).min(5_000);
    let data = tempfile::tempdir().unwrap();
    let env = vec![
        ("CHORUS_API_TOKEN", TOKEN.to_owned()),
        ("CHORUS_HEADER_TIMEOUT_MS", "3000".to_owned()),
        ("CHORUS_BODY_TIMEOUT_MS", "1000".to_owned()),
        ("CHORUS_MAX_CONNECTIONS", (n + 100).to_string()),
    ];
    let server = chorus_testkit::Process::start(exe(), data.path(), &env).await;
    let http = reqwest::Client::new();
    let (_, url, secret) = setup(&http, &server.base, json!({"agent": "builder", "source": "chorus"})).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let before = peak_rss_kib(server.pid().unwrap()).expect("the server's /proc status");

    let mut slow = Vec::with_capacity(n);
    for _ in 0..n {
        slow.push(half_request(&addr).await);
    }
    // A sender still gets in while they hang on.
    post_signed(&http, &url, &secret, &json!({"title": "still here"})).await;

    // A body that stops coming is refused once its time is up.
    let path = &url[url.find("/webhook/").unwrap()..];
    let mut dribble = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: chorus\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"tit"
    );
    dribble.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, dribble.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("not received within the time allowed"), "{answer}");

    // Each is closed by the header timeout: its read ends (EOF or reset).
    for s in &mut slow {
        let mut buf = [0u8; 256];
        let ended = tokio::time::timeout(WAIT, s.read(&mut buf)).await;
        assert!(ended.is_ok(), "a slow connection was still open after {WAIT:?}");
    }
    // Memory grows with the connections held, boundedly: a connection is
    // handed to hyper (two 8 KiB buffers) only once its first head is in, so
    // one that sends half a head holds only what it sent; the cap bounds how
    // many.
    let peak = peak_rss_kib(server.pid().unwrap()).expect("the server's /proc status");
    let per_connection = (peak - before) / n as u64;
    eprintln!("{n} slow connections: peak RSS {} MiB ({per_connection} KiB each)", peak / 1024);
    assert!(
        per_connection < 8,
        "{per_connection} KiB per held connection (peak {peak} KiB, {before} KiB before)"
    );
    assert!(peak < 100 * 1024, "peak RSS {} MiB with {n} slow connections", peak / 1024);
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_gets_503() {
    init();
    let data = tempfile::tempdir().unwrap();
    let env = vec![
        ("CHORUS_API_TOKEN", TOKEN.to_owned()),
        ("CHORUS_HEADER_TIMEOUT_MS", "60000".to_owned()),
        ("CHORUS_MAX_CONNECTIONS", "20".to_owned()),
    ];
    let server = chorus_testkit::Process::start(exe(), data.path(), &env).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(half_request(&addr).await);
    }
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, extra.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");

    // One leaves: there is room again.
    drop(held.pop());
    let http = reqwest::Client::new();
    let healthy = async {
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await
                && r.status() == 200
            {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, healthy).await.expect("a connection is served once one leaves");
}
