//! Docker engine events, which Chorus's watcher reads from the engine's
//! `GET /events` stream and stores as events of the engine's hooks. Docker
//! gives an event no id: the engine's nanosecond time, the object and the
//! action together name it, so a stream resumed with `since` repeats none.

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, key};

pub(crate) struct Docker;

impl Provider for Docker {
    fn source(&self) -> Source {
        Source::Docker
    }

    fn event_type(&self, _headers: &HeaderMap, body: &Value) -> String {
        chorus_format::docker_event_type(body)
    }

    fn delivery_key(&self, _headers: &HeaderMap, body: Option<&Value>) -> Option<String> {
        let body = body?;
        let time = body.get("timeNano").or_else(|| body.get("time"))?;
        let id = body.pointer("/Actor/ID").or_else(|| body.get("id")).and_then(Value::as_str).unwrap_or("");
        let action = body.get("Action").or_else(|| body.get("status")).and_then(Value::as_str).unwrap_or("");
        key(Some(format!("{time}:{id}:{action}")))
    }

    fn event_families(&self) -> Option<&'static [&'static str]> {
        Some(&[
            "container",
            "image",
            "volume",
            "network",
            "daemon",
            "plugin",
            "node",
            "service",
            "secret",
            "config",
        ])
    }

    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let body = json!({
            "Type": "container",
            "Action": "die",
            "Actor": {"ID": delivery, "Attributes": {"name": "chorus-test", "image": "alpine:3", "exitCode": "1"}},
            "scope": "local",
            "time": now.as_second(),
            "timeNano": now.as_nanosecond() as i64,
            "Container": {"State": {"ExitCode": 1, "OOMKilled": false,
                                    "StartedAt": (now - jiff::SignedDuration::from_mins(5)).to_string(),
                                    "FinishedAt": now.to_string()}},
            "Logs": note,
        });
        (body, Vec::new())
    }

    fn setup(&self) -> Option<&'static str> {
        Some(
            "Chorus reads the Docker engine named by CHORUS_DOCKER_HOST \
             (default unix:///var/run/docker.sock; tcp://host:2375 also works)\n\
             Give the process access to the socket (e.g. mount it read-only into Chorus's container)",
        )
    }
}
