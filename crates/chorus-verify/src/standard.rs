//! Standard Webhooks beyond `v1`: the asymmetric `v1a` scheme (Ed25519,
//! `whsk_` secret keys and `whpk_` public keys), which the specification
//! defines and its reference libraries do not implement yet, and Svix's
//! spelling of the headers (`svix-id`, `svix-timestamp`, `svix-signature`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chorus_core::Secret;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::VerifyError;

/// The key a Standard Webhooks secret stands for.
pub(crate) enum StandardKey {
    /// `whsec_…` (or bare base64): HMAC-SHA256, signatures `v1,…`.
    Symmetric(Vec<u8>),
    /// `whsk_…`: an Ed25519 secret key; signs `v1a,…` and verifies them.
    Signing(SigningKey),
    /// `whpk_…`: an Ed25519 public key; verifies `v1a,…` only.
    Verifying(VerifyingKey),
}

impl StandardKey {
    /// Parse a secret by its prefix.
    pub(crate) fn parse(secret: &Secret) -> Result<Self, VerifyError> {
        let raw = secret.expose();
        if let Some(b64) = raw.strip_prefix("whsk_") {
            let bytes = B64.decode(b64).map_err(|_| VerifyError::BadSecret)?;
            // A 32-byte seed, or libsodium's 64-byte seed ‖ public key.
            let seed: [u8; 32] =
                bytes.get(..32).and_then(|s| s.try_into().ok()).ok_or(VerifyError::BadSecret)?;
            let key = SigningKey::from_bytes(&seed);
            if bytes.len() == 64 && bytes[32..] != key.verifying_key().to_bytes() {
                return Err(VerifyError::BadSecret);
            }
            if bytes.len() != 32 && bytes.len() != 64 {
                return Err(VerifyError::BadSecret);
            }
            return Ok(StandardKey::Signing(key));
        }
        if let Some(b64) = raw.strip_prefix("whpk_") {
            let bytes: [u8; 32] =
                B64.decode(b64).ok().and_then(|b| b.try_into().ok()).ok_or(VerifyError::BadSecret)?;
            return VerifyingKey::from_bytes(&bytes)
                .map(StandardKey::Verifying)
                .map_err(|_| VerifyError::BadSecret);
        }
        let b64 = raw.strip_prefix("whsec_").unwrap_or(raw);
        B64.decode(b64).map(StandardKey::Symmetric).map_err(|_| VerifyError::BadSecret)
    }

    /// The public key of an asymmetric key, as `whpk_…`.
    pub(crate) fn public(&self) -> Option<String> {
        let key = match self {
            StandardKey::Signing(k) => k.verifying_key(),
            StandardKey::Verifying(k) => *k,
            StandardKey::Symmetric(_) => return None,
        };
        Some(format!("whpk_{}", B64.encode(key.to_bytes())))
    }

    /// Whether one `v1,…` or `v1a,…` entry of a signature header verifies
    /// `content` (`{id}.{timestamp}.{body}`) under this key.
    pub(crate) fn verifies(&self, entry: &str, content: &[&[u8]]) -> bool {
        match self {
            StandardKey::Symmetric(key) => entry
                .strip_prefix("v1,")
                .and_then(|b64| B64.decode(b64).ok())
                .is_some_and(|tag| crate::any_key_matches(std::iter::once(key.as_slice()), content, &tag)),
            StandardKey::Signing(_) | StandardKey::Verifying(_) => {
                let key = match self {
                    StandardKey::Signing(k) => k.verifying_key(),
                    StandardKey::Verifying(k) => *k,
                    StandardKey::Symmetric(_) => unreachable!(),
                };
                let Some(sig) = entry
                    .strip_prefix("v1a,")
                    .and_then(|b64| B64.decode(b64).ok())
                    .and_then(|b| <[u8; 64]>::try_from(b).ok())
                else {
                    return false;
                };
                let message = content.concat();
                key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
            }
        }
    }

    /// The signature entry for `content`: `v1,…` or `v1a,…`.
    pub(crate) fn sign(&self, content: &[&[u8]]) -> Result<String, VerifyError> {
        match self {
            StandardKey::Symmetric(key) => {
                let tag = hmac::Mac::finalize(crate::mac(key, content)).into_bytes();
                Ok(format!("v1,{}", B64.encode(tag)))
            }
            StandardKey::Signing(key) => {
                Ok(format!("v1a,{}", B64.encode(key.sign(&content.concat()).to_bytes())))
            }
            // A public key cannot sign.
            StandardKey::Verifying(_) => Err(VerifyError::BadSecret),
        }
    }
}

/// The public key (`whpk_…`) of a `whsk_…` or `whpk_…` secret, to give to
/// receivers of `v1a` signatures; `None` for a symmetric secret.
pub fn standard_public_key(secret: &Secret) -> Option<String> {
    StandardKey::parse(secret).ok()?.public()
}

/// A fresh `whsk_…` Ed25519 secret key (its 32-byte seed, base64).
pub fn generate_standard_signing_key() -> Secret {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system's random source failed");
    Secret::new(format!("whsk_{}", B64.encode(seed)))
}
