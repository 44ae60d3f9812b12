//! Discord's HTTP interactions: every request is signed with Ed25519 over
//! `timestamp || body`, with the application's public key.

use http::HeaderMap;
use jiff::Timestamp;

use crate::{TOLERANCE_SECS, VerifyError, header};

/// `X-Signature-Ed25519`: hex of the 64-byte signature.
pub const SIGNATURE: &str = "x-signature-ed25519";
/// `X-Signature-Timestamp`: the signed timestamp (Unix seconds).
pub const TIMESTAMP: &str = "x-signature-timestamp";

/// An application's public key, as the Developer Portal shows it (hex).
#[derive(Clone)]
pub struct DiscordKey(ed25519_dalek::VerifyingKey);

impl std::fmt::Debug for DiscordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DiscordKey({})", hex::encode(self.0.as_bytes()))
    }
}

impl DiscordKey {
    /// Parse the 64 hex characters of a public key.
    pub fn from_hex(text: &str) -> Result<Self, VerifyError> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| VerifyError::MalformedHeader("public key: 64 hex characters".into()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| VerifyError::MalformedHeader("public key: not an Ed25519 point".into()))
    }

    /// Check an interaction request. The timestamp must be within the usual
    /// tolerance of `now`, so a captured request cannot be replayed later.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Result<(), VerifyError> {
        let signature = header(headers, SIGNATURE)?;
        let timestamp = header(headers, TIMESTAMP)?;
        let signature: [u8; 64] = hex::decode(signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| VerifyError::MalformedHeader(SIGNATURE.into()))?;
        let secs: i64 = timestamp.parse().map_err(|_| VerifyError::MalformedHeader(TIMESTAMP.into()))?;
        if (now.as_second() - secs).abs() > TOLERANCE_SECS {
            return Err(VerifyError::TimestampOutOfTolerance);
        }
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        // `verify_strict` refuses the malleable and small-order forms plain
        // `verify` lets through.
        self.0
            .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
            .map_err(|_| VerifyError::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    fn signed(key: &SigningKey, ts: &str, body: &[u8]) -> HeaderMap {
        let mut message = ts.as_bytes().to_vec();
        message.extend_from_slice(body);
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE, hex::encode(key.sign(&message).to_bytes()).parse().unwrap());
        h.insert(TIMESTAMP, ts.parse().unwrap());
        h
    }

    #[test]
    fn interactions_verify_only_as_signed() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = DiscordKey::from_hex(&hex::encode(key.verifying_key().as_bytes())).unwrap();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let body = br#"{"type":1}"#;
        let good = signed(&key, "1700000000", body);
        assert!(public.verify(&good, body, now).is_ok());
        assert!(matches!(public.verify(&good, br#"{"type":2}"#, now), Err(VerifyError::InvalidSignature)));
        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(matches!(
            public.verify(&signed(&other, "1700000000", body), body, now),
            Err(VerifyError::InvalidSignature)
        ));
        let stale = signed(&key, "1699999000", body);
        assert!(matches!(public.verify(&stale, body, now), Err(VerifyError::TimestampOutOfTolerance)));
        assert!(public.verify(&HeaderMap::new(), body, now).unwrap_err().is_missing());
        let mut garbled = good.clone();
        garbled.insert(SIGNATURE, "zz".parse().unwrap());
        assert!(matches!(public.verify(&garbled, body, now), Err(VerifyError::MalformedHeader(_))));
        assert!(DiscordKey::from_hex("abcd").is_err());
    }
}
