//! Docker Hub pushes, Slack Events API callbacks and Stripe events.

use chorus_core::Message;
use serde_json::Value;

use crate::util::{color, n, s, truncate};

/// Docker Hub: `{"push_data": {"tag", "pusher"}, "repository": {"repo_name", "repo_url"}}`.
pub(crate) fn dockerhub(event_type: &str, p: &Value) -> Option<Message> {
    let push = p.get("push_data")?;
    let repo = s(p, "/repository/repo_name")
        .map(str::to_owned)
        .or_else(|| Some(format!("{}/{}", s(p, "/repository/namespace")?, s(p, "/repository/name")?)))?;
    let tag = s(push, "/tag").unwrap_or("latest");
    let mut m = Message::titled(format!("[{repo}] pushed {repo}:{tag}"));
    m.color = Some(color::BLUE);
    m.author = s(push, "/pusher").map(str::to_owned);
    m.url = s(p, "/repository/repo_url").filter(|u| u.starts_with("http")).map(str::to_owned);
    m.description = format!("`docker pull {repo}:{tag}`");
    m.footer = Some(format!("Docker Hub · {event_type}"));
    Some(m)
}

/// Slack Events API (`event_callback`): the message's text first.
pub(crate) fn slack(event_type: &str, p: &Value) -> Option<Message> {
    let event = p.get("event")?;
    let kind = s(event, "/type").unwrap_or("event");
    let channel = s(event, "/channel").map(|c| format!(" in <#{c}>")).unwrap_or_default();
    let user = s(event, "/user").or_else(|| s(event, "/bot_id"));
    let mut m = Message::titled(match kind {
        "message" => format!("Slack message{channel}"),
        "app_mention" => format!("Slack mention{channel}"),
        "reaction_added" => format!("Slack reaction :{}:{channel}", s(event, "/reaction").unwrap_or("?")),
        other => format!("Slack {other}{channel}"),
    });
    m.color = Some(0x004A_154B);
    m.author = user.map(str::to_owned);
    m.description = s(event, "/text").map(|t| truncate(t, 1500)).unwrap_or_default();
    m.footer = Some(format!("Slack · {event_type}"));
    Some(m)
}

/// Stripe events: the type, the object and its amount or email.
pub(crate) fn stripe(event_type: &str, p: &Value) -> Option<Message> {
    let object = p.pointer("/data/object")?;
    let kind = s(p, "/type").unwrap_or(event_type);
    let id = s(object, "/id").unwrap_or("");
    let mut m = Message::titled(format!("Stripe {kind}: {id}"));
    // Stripe names events `object.verb`: the verb decides the colour.
    let verb = kind.rsplit('.').next().unwrap_or(kind);
    m.color = Some(if verb == "failed" || verb == "payment_failed" || kind.contains("dispute") {
        color::RED
    } else if matches!(verb, "succeeded" | "paid" | "created") {
        color::GREEN
    } else {
        0x0063_5BFF
    });
    let mut lines = Vec::new();
    if let (Some(amount), Some(currency)) =
        (object.get("amount").and_then(Value::as_i64), s(object, "/currency"))
    {
        lines.push(format!("Amount: **{} {}**", money(amount, currency), currency.to_ascii_uppercase()));
    }
    for (name, pointer) in [
        ("Customer", "/email"),
        ("Customer", "/customer_email"),
        ("Status", "/status"),
        ("Description", "/description"),
    ] {
        if let Some(v) = s(object, pointer) {
            lines.push(format!("{name}: {}", truncate(v, 200)));
        }
    }
    if let Some(reason) = s(object, "/failure_message").or_else(|| s(object, "/last_payment_error/message")) {
        lines.push(format!("Failure: {}", truncate(reason, 300)));
    }
    m.description = lines.join("\n");
    let live = p.get("livemode").and_then(Value::as_bool).unwrap_or(false);
    m.url = (!id.is_empty()).then(|| {
        let test = if live { "" } else { "test/" };
        format!("https://dashboard.stripe.com/{test}events/{}", s(p, "/id").unwrap_or(id))
    });
    m.footer = Some(format!("Stripe · {}{event_type}", if live { "" } else { "test mode · " }));
    if let Some(created) = n(p, "/created") {
        m = m.field("Created", format!("<t:{created}:f>"), true);
    }
    Some(m)
}

/// Minor units as a decimal amount (zero-decimal currencies as they are).
fn money(amount: i64, currency: &str) -> String {
    const ZERO_DECIMAL: &[&str] = &[
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf",
        "xof", "xpf",
    ];
    if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        return amount.to_string();
    }
    format!("{}.{:02}", amount / 100, (amount % 100).abs())
}
