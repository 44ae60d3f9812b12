//! Fake GitHub, GitLab and Jira REST APIs: they check credentials the way
//! the real ones do, keep the comments they are sent, and answer with the
//! shape of the real answer.

use std::{net::SocketAddr, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use tokio::net::TcpListener;

use crate::{Received, receiver::RequestLog};

/// Which API the fake plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// `POST /repos/{owner}/{repo}/issues/{n}/comments`, `Authorization: Bearer`.
    Github,
    /// `POST /projects/{id}/(issues|merge_requests)/{iid}/notes`, `PRIVATE-TOKEN`.
    Gitlab,
    /// `POST /rest/api/2/issue/{key}/comment`, Basic `email:token`.
    Jira,
}

#[derive(Clone)]
struct Shared {
    forge: Forge,
    credential: String,
    log: RequestLog,
}

/// A fake forge API on loopback.
pub struct FakeForge {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeForge {
    /// Start a fake `forge` that accepts `token` (for Jira, `email` and
    /// `token` as Basic auth).
    pub async fn start(forge: Forge, email: Option<&str>, token: &str) -> Self {
        use base64::Engine as _;
        let basic = |user: &str| base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
        let credential = match forge {
            Forge::Github => format!("Bearer {token}"),
            Forge::Gitlab => token.to_owned(),
            Forge::Jira => format!("Basic {}", basic(email.unwrap_or_default())),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake forge");
        let addr = listener.local_addr().unwrap();
        let shared = Shared { forge, credential, log: RequestLog::default() };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake forge server");
        });
        Self { addr, shared, task }
    }

    /// The API base to configure as the hook's `reply.api_url`.
    pub fn base(&self) -> String {
        match self.shared.forge {
            Forge::Gitlab => format!("http://{}/api/v4", self.addr),
            Forge::Github | Forge::Jira => format!("http://{}", self.addr),
        }
    }

    /// Comments accepted (credentials right, path right), in order.
    pub fn comments(&self) -> Vec<Received> {
        self.shared.log.all().into_iter().filter(|r| r.status == 201).collect()
    }

    /// Every request, accepted or not.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.log.all()
    }

    /// Wait until `n` requests arrived, or panic after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.shared.log.wait_for(n, timeout, "the fake forge").await
    }
}

fn path_ok(forge: Forge, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match forge {
        Forge::Github => {
            matches!(parts.as_slice(), ["repos", _, _, "issues", n, "comments"] if n.parse::<u64>().is_ok())
        }
        Forge::Gitlab => matches!(
            parts.as_slice(),
            ["api", "v4", "projects", p, "issues" | "merge_requests", n, "notes"]
                if p.parse::<u64>().is_ok() && n.parse::<u64>().is_ok()
        ),
        Forge::Jira => matches!(parts.as_slice(), ["rest", "api", "2", "issue", _, "comment"]),
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let given = match shared.forge {
        Forge::Gitlab => header("private-token"),
        Forge::Github | Forge::Jira => header("authorization"),
    };
    let comment: Option<String> = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["body"].as_str().map(str::to_owned));
    let (status, answer) = if given != shared.credential {
        (StatusCode::UNAUTHORIZED, serde_json::json!({"message": "Bad credentials"}))
    } else if method != Method::POST || !path_ok(shared.forge, uri.path()) {
        (StatusCode::NOT_FOUND, serde_json::json!({"message": "Not Found"}))
    } else if comment.as_deref().is_none_or(str::is_empty) {
        (StatusCode::UNPROCESSABLE_ENTITY, serde_json::json!({"message": "body is missing"}))
    } else {
        let n = shared.log.len() + 1;
        (StatusCode::CREATED, serde_json::json!({"id": n, "body": comment}))
    };
    shared.log.push(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers,
        body,
        at: std::time::Instant::now(),
        status: status.as_u16(),
    });
    (status, Json(answer)).into_response()
}
