//! Discord's side of HTTP interactions: an application key pair that signs
//! interaction requests, and payload builders for slash commands.

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

/// An application's Ed25519 key pair.
pub struct InteractionSigner(SigningKey);

impl InteractionSigner {
    /// A key pair from a fixed seed (tests want reproducible keys).
    pub fn from_seed(seed: u8) -> Self {
        Self(SigningKey::from_bytes(&[seed; 32]))
    }

    /// The public key as the Developer Portal shows it.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }

    /// `X-Signature-Ed25519` and `X-Signature-Timestamp` for `body` at `unix_secs`.
    pub fn headers(&self, body: &[u8], unix_secs: i64) -> Vec<(String, String)> {
        let ts = unix_secs.to_string();
        let mut message = ts.as_bytes().to_vec();
        message.extend_from_slice(body);
        vec![
            ("x-signature-ed25519".into(), hex::encode(self.0.sign(&message).to_bytes())),
            ("x-signature-timestamp".into(), ts),
            ("content-type".into(), "application/json".into()),
        ]
    }
}

/// Permission bits of a member who may manage webhooks, and of one who may not.
pub const MANAGE_WEBHOOKS: &str = "536870912";
/// Send Messages only.
pub const SEND_MESSAGES: &str = "2048";

/// An APPLICATION_COMMAND interaction for `/agent …` in channel `channel`
/// from a member with `permissions`. `path` names the subcommand group and
/// subcommand (`["webhook", "add"]` or `["create"]`); `options` are
/// `(name, value)` string options.
pub fn slash_command(channel: &str, permissions: &str, path: &[&str], options: &[(&str, &str)]) -> Value {
    let leaf: Vec<Value> = options.iter().map(|(n, v)| json!({"name": n, "type": 3, "value": v})).collect();
    let option = match path {
        [group, sub] => {
            json!({"name": group, "type": 2, "options": [{"name": sub, "type": 1, "options": leaf}]})
        }
        [sub] => json!({"name": sub, "type": 1, "options": leaf}),
        _ => json!({}),
    };
    json!({
        "id": "1100000000000000001",
        "application_id": "1000000000000000001",
        "type": 2,
        "token": "interaction-token",
        "version": 1,
        "guild_id": "900000000000000001",
        "channel_id": channel,
        "channel": {"id": channel, "type": 0},
        "member": {
            "user": {"id": "800000000000000001", "username": "ana", "discriminator": "0", "global_name": "Ana"},
            "roles": [],
            "permissions": permissions,
            "joined_at": "2026-01-01T00:00:00.000000+00:00",
            "deaf": false,
            "mute": false,
            "flags": 0
        },
        "data": {"id": "1200000000000000001", "name": "agent", "type": 1, "options": [option]},
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "context": 0
    })
}

/// Manage Server: who may decide an approval when the workflow names no role.
pub const MANAGE_GUILD: &str = "32";

/// A MESSAGE_COMPONENT interaction: a click on the button `custom_id` of
/// `message` (as the fake Discord recorded it) in `channel`, by user `user`
/// with `permissions` and `roles`.
pub fn button_click(
    channel: &str,
    user: &str,
    permissions: &str,
    roles: &[&str],
    custom_id: &str,
    message: &Value,
) -> Value {
    json!({
        "id": "1100000000000000002",
        "application_id": "1000000000000000001",
        "type": 3,
        "token": "click-token",
        "version": 1,
        "guild_id": "900000000000000001",
        "channel_id": channel,
        "channel": {"id": channel, "type": 0},
        "member": {
            "user": {"id": user, "username": format!("user{user}")},
            "roles": roles,
            "permissions": permissions,
        },
        "message": message,
        "data": {"custom_id": custom_id, "component_type": 2},
    })
}
