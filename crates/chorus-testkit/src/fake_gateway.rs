//! A stand-in for Discord's gateway: a websocket server on loopback that a
//! real twilight shard reaches through its `proxy_url`. It speaks the
//! protocol's first steps (HELLO, IDENTIFY → READY with its own
//! `resume_gateway_url`, RESUME → RESUMED, heartbeats and their ACKs), and
//! dispatches the events a test hands it (INTERACTION_CREATE, MESSAGE_CREATE)
//! to every connected session, in order, with increasing sequence numbers.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{broadcast, watch},
};
use tokio_websockets::{Message, ServerBuilder};

/// The application id the fake's READY announces.
pub const APPLICATION_ID: &str = "1000000000000000001";
/// The bot user's id.
pub const BOT_USER_ID: &str = "1000000000000000002";
/// The heartbeat interval HELLO asks for.
const HEARTBEAT_MS: u64 = 500;

#[derive(Default)]
struct Seen {
    /// Close every IDENTIFY with this code instead of READY.
    reject_identify: Option<u16>,
    identifies: Vec<Value>,
    resumes: Vec<Value>,
    heartbeats: u64,
    seq: u64,
}

/// A running fake gateway.
pub struct FakeGateway {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    /// Sessions that completed IDENTIFY or RESUME (and got READY/RESUMED).
    ready: watch::Sender<u64>,
    /// Heartbeats received.
    beats: watch::Sender<u64>,
    dispatch: broadcast::Sender<(String, Value)>,
    close: broadcast::Sender<u16>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeGateway {
    /// Start on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake gateway");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let ready = watch::Sender::new(0);
        let beats = watch::Sender::new(0);
        let (dispatch, _) = broadcast::channel(256);
        let (close, _) = broadcast::channel(4);
        let task = {
            let (seen, ready, dispatch, close, beats) =
                (seen.clone(), ready.clone(), dispatch.clone(), close.clone(), beats.clone());
            let url = format!("ws://{addr}");
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let session = Session {
                        seen: seen.clone(),
                        beats: beats.clone(),
                        ready: ready.clone(),
                        events: dispatch.subscribe(),
                        close: close.subscribe(),
                        url: url.clone(),
                    };
                    tokio::spawn(session.run(stream));
                }
            })
        };
        Self { addr, seen, ready, beats, dispatch, close, task }
    }

    /// `ws://127.0.0.1:PORT`: the gateway URL (`CHORUS_DISCORD_GATEWAY`).
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Wait until `n` sessions have been made ready (READY or RESUMED).
    pub async fn wait_ready(&self, n: u64, timeout: Duration) {
        let mut rx = self.ready.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await;
        assert!(waited.is_ok(), "timed out waiting for {n} gateway sessions");
    }

    /// Send a dispatch event (`t` = `event`, `d` = `data`) to connected sessions.
    pub fn dispatch(&self, event: &str, data: Value) {
        let _ = self.dispatch.send((event.to_owned(), data));
    }

    /// Close every session with `code` (4000: "unknown error", resumable).
    pub fn disconnect(&self, code: u16) {
        let _ = self.close.send(code);
    }

    /// Answer every IDENTIFY by closing with `code` (4004: authentication
    /// failed), as Discord does for a bad token.
    pub fn reject_identify(&self, code: u16) {
        self.seen.lock().unwrap().reject_identify = Some(code);
    }

    /// IDENTIFY payloads received.
    pub fn identifies(&self) -> Vec<Value> {
        self.seen.lock().unwrap().identifies.clone()
    }

    /// RESUME payloads received.
    pub fn resumes(&self) -> Vec<Value> {
        self.seen.lock().unwrap().resumes.clone()
    }

    /// Heartbeats received.
    pub fn heartbeats(&self) -> u64 {
        self.seen.lock().unwrap().heartbeats
    }

    /// Wait until `n` heartbeats have arrived (each was ACKed).
    pub async fn wait_heartbeats(&self, n: u64, timeout: Duration) {
        let mut rx = self.beats.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await;
        assert!(waited.is_ok(), "timed out waiting for {n} heartbeats");
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Session {
    seen: Arc<Mutex<Seen>>,
    beats: watch::Sender<u64>,
    ready: watch::Sender<u64>,
    events: broadcast::Receiver<(String, Value)>,
    close: broadcast::Receiver<u16>,
    url: String,
}

impl Session {
    fn next_seq(&self) -> u64 {
        let mut seen = self.seen.lock().unwrap();
        seen.seq += 1;
        seen.seq
    }

    fn dispatch(&self, event: &str, data: Value) -> Message {
        let s = self.next_seq();
        Message::text(json!({"op": 0, "t": event, "s": s, "d": data}).to_string())
    }

    async fn run(mut self, stream: TcpStream) {
        let Ok((_, mut ws)) = ServerBuilder::new().accept(stream).await else { return };
        // Short, so a test sees heartbeats (and their ACKs) within a second.
        let hello = json!({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_MS}});
        if ws.send(Message::text(hello.to_string())).await.is_err() {
            return;
        }
        let mut identified = false;
        loop {
            tokio::select! {
                frame = ws.next() => {
                    let Some(Ok(frame)) = frame else { return };
                    if frame.is_close() {
                        return;
                    }
                    let Some(text) = frame.as_text() else { continue };
                    let Ok(payload) = serde_json::from_str::<Value>(text) else { continue };
                    let reply = match payload["op"].as_u64() {
                        Some(1) => {
                            self.seen.lock().unwrap().heartbeats += 1;
                            self.beats.send_modify(|n| *n += 1);
                            Some(Message::text(json!({"op": 11}).to_string()))
                        }
                        Some(2) => {
                            let rejected = {
                                let mut seen = self.seen.lock().unwrap();
                                seen.identifies.push(payload["d"].clone());
                                seen.reject_identify
                            };
                            if let Some(code) = rejected {
                                let code = tokio_websockets::CloseCode::try_from(code).unwrap_or(tokio_websockets::CloseCode::NORMAL_CLOSURE);
                                let _ = ws.send(Message::close(Some(code), "Authentication failed.")).await;
                                return;
                            }
                            identified = true;
                            Some(self.dispatch("READY", self.ready_payload()))
                        }
                        Some(6) => {
                            self.seen.lock().unwrap().resumes.push(payload["d"].clone());
                            identified = true;
                            Some(self.dispatch("RESUMED", Value::Null))
                        }
                        _ => None,
                    };
                    if let Some(reply) = reply {
                        if ws.send(reply).await.is_err() {
                            return;
                        }
                        if identified && matches!(payload["op"].as_u64(), Some(2 | 6)) {
                            self.ready.send_modify(|n| *n += 1);
                        }
                    }
                }
                event = self.events.recv(), if identified => {
                    let Ok((name, data)) = event else { return };
                    let message = self.dispatch(&name, data);
                    if ws.send(message).await.is_err() {
                        return;
                    }
                }
                code = self.close.recv() => {
                    let code = code.unwrap_or(4000);
                    let frame = tokio_websockets::CloseCode::try_from(code).unwrap_or(tokio_websockets::CloseCode::NORMAL_CLOSURE);
                    let _ = ws.send(Message::close(Some(frame), "closed by the test")).await;
                    return;
                }
            }
        }
    }

    fn ready_payload(&self) -> Value {
        json!({
            "v": 10,
            "user": {"id": BOT_USER_ID, "username": "chorus", "discriminator": "0", "avatar": null,
                     "bot": true, "mfa_enabled": false, "verified": true, "flags": 0},
            "guilds": [],
            "session_id": "fake-session-1",
            "resume_gateway_url": self.url,
            "shard": [0, 1],
            "application": {"id": APPLICATION_ID, "flags": 0},
        })
    }
}
