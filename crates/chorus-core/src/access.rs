//! Who may use the management API, and the record of what they changed.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Everything, including managing tokens.
    Admin,
    /// Reading only: any change is refused with 403.
    Read,
}

impl TokenScope {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Admin => "admin",
            TokenScope::Read => "read",
        }
    }

    /// Parse a stored or requested name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(TokenScope::Admin),
            "read" => Some(TokenScope::Read),
            _ => None,
        }
    }
}

/// An API token as listed: never the token itself, which exists only in the
/// answer that created it (the store keeps its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiToken {
    /// `tok_…`, for listing and revoking.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was revoked; a revoked token is refused.
    pub revoked_at: Option<Timestamp>,
}

/// A token to store: its listing and the SHA-256 of its value.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// The listing.
    pub token: ApiToken,
    /// SHA-256 of the token's value.
    pub hash: [u8; 32],
}

/// One change on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// Who: `admin token (CHORUS_API_TOKEN)` or `token <id> (<name>)`.
    pub actor: String,
    /// Through what: `api`, `cli`, `discord` or `config`.
    pub via: String,
    /// What, e.g. `webhooks.create`, `agents.disable`, `tokens.revoke`.
    pub action: String,
    /// To what: a hook id, an agent name, a token id.
    pub target: Option<String>,
}
