#![doc = include_str!("../README.md")]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chorus_core::{GenericScheme, Secret, SignatureEncoding, Source};
use hmac::{KeyInit, Mac};
use http::HeaderMap;
use jiff::Timestamp;

mod discord;
mod standard;

pub use discord::{DiscordKey, SIGNATURE as DISCORD_SIGNATURE, TIMESTAMP as DISCORD_TIMESTAMP};
use standard::StandardKey;
pub use standard::{generate_standard_signing_key, standard_public_key};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How far a signed timestamp may be from `now`, either way. Stripe, Slack
/// and Standard Webhooks all use five minutes.
pub const TOLERANCE_SECS: i64 = 300;

/// Header names, as senders spell them.
pub mod headers {
    /// Chorus's own signature header.
    pub const CHORUS_SIGNATURE: &str = "x-chorus-signature-256";
    /// GitHub's SHA-256 signature header.
    pub const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
    /// GitLab's secret token header.
    pub const GITLAB_TOKEN: &str = "x-gitlab-token";
    /// Standard Webhooks message id.
    pub const STANDARD_ID: &str = "webhook-id";
    /// Standard Webhooks timestamp.
    pub const STANDARD_TIMESTAMP: &str = "webhook-timestamp";
    /// Standard Webhooks signatures.
    pub const STANDARD_SIGNATURE: &str = "webhook-signature";
    /// Svix's name for the Standard Webhooks message id.
    pub const SVIX_ID: &str = "svix-id";
    /// Svix's name for the timestamp.
    pub const SVIX_TIMESTAMP: &str = "svix-timestamp";
    /// Svix's name for the signatures.
    pub const SVIX_SIGNATURE: &str = "svix-signature";
    /// Slack's timestamp.
    pub const SLACK_TIMESTAMP: &str = "x-slack-request-timestamp";
    /// Slack's signature.
    pub const SLACK_SIGNATURE: &str = "x-slack-signature";
    /// Stripe's signature.
    pub const STRIPE_SIGNATURE: &str = "stripe-signature";
    /// Jira Cloud's signature (`sha256=<hex>` over the body).
    pub const JIRA_SIGNATURE: &str = "x-hub-signature";
    /// Bitbucket's signature (`sha256=<hex>` over the body): Jira's header.
    pub const BITBUCKET_SIGNATURE: &str = JIRA_SIGNATURE;
    /// Sentry's signature (`<hex>` over the body).
    pub const SENTRY_SIGNATURE: &str = "sentry-hook-signature";
    /// CircleCI's signature (`v1=<hex>` over the body, several allowed).
    pub const CIRCLECI_SIGNATURE: &str = "circleci-signature";
    /// Gitea's signature (`<hex>` over the body).
    pub const GITEA_SIGNATURE: &str = "x-gitea-signature";
    /// Forgejo's name for the same signature.
    pub const FORGEJO_SIGNATURE: &str = "x-forgejo-signature";

    /// Headers that carry credentials and must never be stored or logged.
    pub const SENSITIVE: &[&str] = &[
        CHORUS_SIGNATURE,
        GITHUB_SIGNATURE,
        JIRA_SIGNATURE,
        SENTRY_SIGNATURE,
        CIRCLECI_SIGNATURE,
        GITEA_SIGNATURE,
        FORGEJO_SIGNATURE,
        "x-gogs-signature",
        GITLAB_TOKEN,
        STANDARD_SIGNATURE,
        SVIX_SIGNATURE,
        SLACK_SIGNATURE,
        STRIPE_SIGNATURE,
        "authorization",
        "cookie",
    ];
}

/// Why a request failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required signature, token or timestamp header is absent.
    #[error("missing header {0}")]
    MissingHeader(String),
    /// A header is present but cannot be parsed.
    #[error("malformed header {0}")]
    MalformedHeader(String),
    /// No secret produces the given signature.
    #[error("invalid signature")]
    InvalidSignature,
    /// The signed timestamp is more than five minutes from now.
    #[error("timestamp outside the {TOLERANCE_SECS} s tolerance")]
    TimestampOutOfTolerance,
    /// The hook's secret cannot be used with its scheme (e.g. a Standard
    /// Webhooks secret that is not base64).
    #[error("the hook's secret does not fit its signature scheme")]
    BadSecret,
    /// The hook is not fed by requests (a Docker hook: the engine watcher
    /// feeds it), so no request is genuine.
    #[error("this hook takes no requests")]
    NoRequests,
}

impl VerifyError {
    /// Whether the sender sent no credentials at all (HTTP 401) rather than
    /// wrong ones (403).
    pub fn is_missing(&self) -> bool {
        matches!(self, VerifyError::MissingHeader(_))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, VerifyError> {
    let value = headers.get(name).ok_or_else(|| VerifyError::MissingHeader(name.to_owned()))?;
    value.to_str().map(str::trim).map_err(|_| VerifyError::MalformedHeader(name.to_owned()))
}

pub(crate) fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// Constant-time check of `tag` against the HMAC of `parts` under any of `keys`.
pub(crate) fn any_key_matches<'k>(
    keys: impl IntoIterator<Item = &'k [u8]>,
    parts: &[&[u8]],
    tag: &[u8],
) -> bool {
    // Every key is tried even after a match so the time taken does not tell
    // which key matched.
    keys.into_iter().fold(false, |ok, key| mac(key, parts).verify_slice(tag).is_ok() | ok)
}

fn check_timestamp(ts: &str, name: &str, now: Timestamp) -> Result<i64, VerifyError> {
    let secs: i64 = ts.parse().map_err(|_| VerifyError::MalformedHeader(name.to_owned()))?;
    if (now.as_second() - secs).abs() > TOLERANCE_SECS {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    Ok(secs)
}

fn decode_hex_sig(value: &str, prefix: &str) -> Result<Vec<u8>, VerifyError> {
    let hex_part = value.strip_prefix(prefix).ok_or(VerifyError::InvalidSignature)?;
    hex::decode(hex_part).map_err(|_| VerifyError::InvalidSignature)
}

/// Verify a request against a hook's scheme and secrets.
///
/// `secrets` holds every secret that currently verifies for the hook (two
/// during a rotation). For [`Source::None`] nothing is checked.
pub fn verify(
    source: Source,
    generic: Option<&GenericScheme>,
    secrets: &[Secret],
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<(), VerifyError> {
    let keys = || secrets.iter().map(|s| s.expose().as_bytes());
    let ok = match source {
        Source::None => return Ok(()),
        Source::Docker => return Err(VerifyError::NoRequests),
        Source::Chorus | Source::Github | Source::Jira | Source::Bitbucket => {
            let name = match source {
                Source::Chorus => headers::CHORUS_SIGNATURE,
                Source::Jira | Source::Bitbucket => headers::JIRA_SIGNATURE,
                _ => headers::GITHUB_SIGNATURE,
            };
            let tag = decode_hex_sig(header(headers, name)?, "sha256=")?;
            any_key_matches(keys(), &[body], &tag)
        }
        Source::Sentry => {
            let tag = decode_hex_sig(header(headers, headers::SENTRY_SIGNATURE)?, "")?;
            any_key_matches(keys(), &[body], &tag)
        }
        Source::Gitea => {
            // Forgejo sends both names; either verifies.
            let value = header(headers, headers::GITEA_SIGNATURE)
                .or_else(|_| header(headers, headers::FORGEJO_SIGNATURE))
                .map_err(|_| VerifyError::MissingHeader(headers::GITEA_SIGNATURE.into()))?;
            let tag = decode_hex_sig(value, "")?;
            any_key_matches(keys(), &[body], &tag)
        }
        Source::Circleci => {
            // `v1=<hex>`, comma-separated when CircleCI adds versions.
            let value = header(headers, headers::CIRCLECI_SIGNATURE)?;
            value
                .split(',')
                .filter_map(|part| part.trim().strip_prefix("v1="))
                .filter_map(|h| hex::decode(h).ok())
                .fold(false, |ok, tag| any_key_matches(keys(), &[body], &tag) | ok)
        }
        Source::Gitlab => {
            let token = header(headers, headers::GITLAB_TOKEN)?;
            secrets.iter().fold(false, |ok, s| s.matches(token.as_bytes()) | ok)
        }
        Source::Standard => {
            // Svix sends the same scheme under its own header names.
            let (id, ts, sigs) =
                if headers.contains_key(headers::STANDARD_ID) || !headers.contains_key(headers::SVIX_ID) {
                    (
                        header(headers, headers::STANDARD_ID)?,
                        header(headers, headers::STANDARD_TIMESTAMP)?,
                        header(headers, headers::STANDARD_SIGNATURE)?,
                    )
                } else {
                    (
                        header(headers, headers::SVIX_ID)?,
                        header(headers, headers::SVIX_TIMESTAMP)?,
                        header(headers, headers::SVIX_SIGNATURE)?,
                    )
                };
            check_timestamp(ts, headers::STANDARD_TIMESTAMP, now)?;
            let keys = secrets.iter().map(StandardKey::parse).collect::<Result<Vec<_>, _>>()?;
            let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
            sigs.split(' ').any(|entry| keys.iter().any(|k| k.verifies(entry, &parts)))
        }
        Source::Slack => {
            let ts = header(headers, headers::SLACK_TIMESTAMP)?;
            let sig = header(headers, headers::SLACK_SIGNATURE)?;
            check_timestamp(ts, headers::SLACK_TIMESTAMP, now)?;
            let tag = decode_hex_sig(sig, "v0=")?;
            any_key_matches(keys(), &[b"v0:", ts.as_bytes(), b":", body], &tag)
        }
        Source::Stripe => {
            let value = header(headers, headers::STRIPE_SIGNATURE)?;
            let parsed = parse_stripe_header(value)?;
            check_timestamp(&parsed.t.to_string(), headers::STRIPE_SIGNATURE, now)?;
            let ts = parsed.t.to_string();
            parsed
                .v1
                .iter()
                .filter_map(|h| hex::decode(h).ok())
                .fold(false, |ok, tag| any_key_matches(keys(), &[ts.as_bytes(), b".", body], &tag) | ok)
        }
        Source::Generic => {
            let default = GenericScheme::default();
            let scheme = generic.unwrap_or(&default);
            let value = header(headers, &scheme.header.to_ascii_lowercase())?;
            let value = match &scheme.prefix {
                Some(p) => value.strip_prefix(p.as_str()).unwrap_or(value),
                None => value.strip_prefix("sha256=").unwrap_or(value),
            };
            let tag = match scheme.encoding {
                SignatureEncoding::Hex => hex::decode(value).map_err(|_| VerifyError::InvalidSignature)?,
                SignatureEncoding::Base64 => B64.decode(value).map_err(|_| VerifyError::InvalidSignature)?,
            };
            any_key_matches(keys(), &[body], &tag)
        }
    };
    if ok { Ok(()) } else { Err(VerifyError::InvalidSignature) }
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSignature {
    /// The signed timestamp.
    pub t: i64,
    /// `v1` signatures (hex).
    pub v1: Vec<String>,
    /// `v0` signatures (hex); never used for verification.
    pub v0: Vec<String>,
}

/// Parse `t=…,v1=…,v0=…`.
pub fn parse_stripe_header(value: &str) -> Result<StripeSignature, VerifyError> {
    let malformed = || VerifyError::MalformedHeader(headers::STRIPE_SIGNATURE.to_owned());
    let mut t = None;
    let (mut v1, mut v0) = (Vec::new(), Vec::new());
    for item in value.split(',') {
        let (k, v) = item.trim().split_once('=').ok_or_else(malformed)?;
        match k {
            "t" => t = Some(v.parse().map_err(|_| malformed())?),
            "v1" => v1.push(v.to_owned()),
            "v0" => v0.push(v.to_owned()),
            _ => {}
        }
    }
    let t = t.ok_or_else(malformed)?;
    if v1.is_empty() {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(StripeSignature { t, v1, v0 })
}

/// HMAC-SHA256 of `body` under `secret`, as `sha256=<hex>`: the value of
/// `X-Chorus-Signature-256` and `X-Hub-Signature-256`.
pub fn sign_body_hex(secret: &Secret, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret.expose().as_bytes(), &[body]).finalize().into_bytes()))
}

/// The Standard Webhooks `webhook-signature` value: `v1,<base64 HMAC>` for
/// a `whsec_` secret, `v1a,<base64 Ed25519 signature>` for a `whsk_` key;
/// a `whpk_` public key cannot sign.
pub fn sign_standard(
    secret: &Secret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, VerifyError> {
    let ts = timestamp.to_string();
    StandardKey::parse(secret)?.sign(&[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body])
}

/// The headers a sender of `source` would attach to `body`, signed with
/// `secret` at `now`. Used by hook tests, test sends and the test suite.
///
/// `msg_id` is the Standard Webhooks message id (ignored by other schemes).
pub fn sign(
    source: Source,
    generic: Option<&GenericScheme>,
    secret: &Secret,
    body: &[u8],
    now: Timestamp,
    msg_id: &str,
) -> Vec<(String, String)> {
    let key = secret.expose().as_bytes();
    let ts = now.as_second().to_string();
    match source {
        Source::None | Source::Docker => vec![],
        Source::Chorus => vec![(headers::CHORUS_SIGNATURE.into(), sign_body_hex(secret, body))],
        Source::Github => vec![(headers::GITHUB_SIGNATURE.into(), sign_body_hex(secret, body))],
        Source::Jira | Source::Bitbucket => {
            vec![(headers::JIRA_SIGNATURE.into(), sign_body_hex(secret, body))]
        }
        Source::Sentry => vec![(headers::SENTRY_SIGNATURE.into(), hex_mac(key, body))],
        Source::Gitea => vec![(headers::GITEA_SIGNATURE.into(), hex_mac(key, body))],
        Source::Circleci => vec![(headers::CIRCLECI_SIGNATURE.into(), format!("v1={}", hex_mac(key, body)))],
        Source::Gitlab => vec![(headers::GITLAB_TOKEN.into(), secret.expose().to_owned())],
        Source::Standard => vec![
            (headers::STANDARD_ID.into(), msg_id.to_owned()),
            (headers::STANDARD_TIMESTAMP.into(), ts.clone()),
            (
                headers::STANDARD_SIGNATURE.into(),
                sign_standard(secret, msg_id, now.as_second(), body).unwrap_or_default(),
            ),
        ],
        Source::Slack => {
            let tag = mac(key, &[b"v0:", ts.as_bytes(), b":", body]).finalize().into_bytes();
            vec![
                (headers::SLACK_TIMESTAMP.into(), ts),
                (headers::SLACK_SIGNATURE.into(), format!("v0={}", hex::encode(tag))),
            ]
        }
        Source::Stripe => {
            let tag = mac(key, &[ts.as_bytes(), b".", body]).finalize().into_bytes();
            vec![(headers::STRIPE_SIGNATURE.into(), format!("t={ts},v1={}", hex::encode(tag)))]
        }
        Source::Generic => {
            let default = GenericScheme::default();
            let scheme = generic.unwrap_or(&default);
            let tag = mac(key, &[body]).finalize().into_bytes();
            let encoded = match scheme.encoding {
                SignatureEncoding::Hex => hex::encode(tag),
                SignatureEncoding::Base64 => B64.encode(tag),
            };
            let value = format!("{}{encoded}", scheme.prefix.as_deref().unwrap_or(""));
            vec![(scheme.header.to_ascii_lowercase(), value)]
        }
    }
}

/// Lowercase hex HMAC-SHA256 of `body`.
fn hex_mac(key: &[u8], body: &[u8]) -> String {
    hex::encode(mac(key, &[body]).finalize().into_bytes())
}

#[cfg(test)]
mod tests;
