use std::{fs, io::Write as _, path::Path};

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL},
};
use chorus_core::{Secret, StoreError};

/// Sealed values start with this version byte so the format can change later.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
/// How a sealed reference starts.
const REFERENCE: &str = "sealed:";
/// What sealed references are bound to, so a value sealed for a database
/// row cannot be passed off as one, nor the other way round.
const REFERENCE_CONTEXT: &str = "chorus sealed reference";

/// The master key could not be read or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is not base64 of exactly 32 bytes.
    #[error("master key must be base64 of exactly 32 bytes")]
    Malformed,
    /// The key file could not be read or written.
    #[error("master key file {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The AES-256-GCM key that seals secrets at rest.
#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// From base64 of 32 bytes (`CHORUS_MASTER_KEY`).
    pub fn from_base64(b64: &str) -> Result<Self, KeyError> {
        let bytes = B64.decode(b64.trim()).map_err(|_| KeyError::Malformed)?;
        Self::from_bytes(&bytes)
    }

    /// From 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        Aes256Gcm::new_from_slice(bytes).map(Self).map_err(|_| KeyError::Malformed)
    }

    /// Read the key file, or create it (mode 0600) with a fresh random key.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        match fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).expect("the operating system's random source failed");
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir).map_err(io)?;
                }
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io)?;
                file.write_all(B64.encode(bytes).as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Self::from_bytes(&bytes)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Seal `secret`, binding it to `context` (the row it belongs to).
    pub(crate) fn seal(&self, secret: &Secret, context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random source failed");
        let ct = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload { msg: secret.expose().as_bytes(), aad: context.as_bytes() },
            )
            .expect("AES-GCM encryption of a short value cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// `secret` sealed for a file outside the database (a backup, a config
    /// file): `sealed:` and base64url of the sealed bytes. Only a holder
    /// of this key can open it, with [`MasterKey::open_reference`].
    pub fn seal_reference(&self, secret: &Secret) -> String {
        format!("{REFERENCE}{}", self.seal_text(secret, REFERENCE_CONTEXT))
    }

    /// `secret` sealed for `purpose` (a session cookie, say) as base64url
    /// text; only [`MasterKey::open_text`] with the same purpose opens it.
    pub fn seal_text(&self, secret: &Secret, purpose: &str) -> String {
        B64URL.encode(self.seal(secret, purpose))
    }

    /// Open text made by [`MasterKey::seal_text`] for `purpose`. `None`:
    /// made for another purpose or under another key, or altered.
    pub fn open_text(&self, text: &str, purpose: &str) -> Option<Secret> {
        let sealed = B64URL.decode(text.trim()).ok()?;
        self.open(&sealed, purpose).ok()
    }

    /// Open a `sealed:` reference made by [`MasterKey::seal_reference`]
    /// under this key. `None`: not such a reference, or sealed under
    /// another key, or altered.
    pub fn open_reference(&self, reference: &str) -> Option<Secret> {
        self.open_text(reference.strip_prefix(REFERENCE)?, REFERENCE_CONTEXT)
    }

    /// Open a value sealed for `context`.
    pub(crate) fn open(&self, sealed: &[u8], context: &str) -> Result<Secret, StoreError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(StoreError::Unseal);
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..=NONCE_LEN].try_into().expect("length checked");
        let pt = self
            .0
            .decrypt(&Nonce::from(nonce), Payload { msg: &sealed[1 + NONCE_LEN..], aad: context.as_bytes() })
            .map_err(|_| StoreError::Unseal)?;
        String::from_utf8(pt).map(Secret::new).map_err(|_| StoreError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_binding() {
        let key = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = key.seal(&Secret::new("s3cret"), "hook:hk_a");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(key.open(&sealed, "hook:hk_a").unwrap().expose(), "s3cret");
        assert!(matches!(key.open(&sealed, "hook:hk_b"), Err(StoreError::Unseal)));
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(matches!(other.open(&sealed, "hook:hk_a"), Err(StoreError::Unseal)));
        assert_ne!(sealed, key.seal(&Secret::new("s3cret"), "hook:hk_a"), "nonce must be fresh");
    }

    #[test]
    fn references_open_only_under_their_key() {
        let key = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let reference = key.seal_reference(&Secret::new("whsec-in-a-backup"));
        assert!(reference.starts_with("sealed:") && !reference.contains("whsec"), "{reference}");
        assert_eq!(key.open_reference(&reference).unwrap().expose(), "whsec-in-a-backup");
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open_reference(&reference).is_none());
        assert!(key.open_reference("env:NAME").is_none());
        let mut altered = reference.clone();
        altered.pop();
        assert!(key.open_reference(&altered).is_none());
        let row = key.seal(&Secret::new("x"), "hook:hk_a");
        assert!(key.open_reference(&format!("sealed:{}", B64URL.encode(row))).is_none());
    }

    #[test]
    fn key_file_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let b = MasterKey::load_or_create(&path).unwrap();
        let sealed = a.seal(&Secret::new("x"), "c");
        assert_eq!(b.open(&sealed, "c").unwrap().expose(), "x");
    }

    #[test]
    fn malformed_keys_rejected() {
        assert!(matches!(MasterKey::from_base64("not base64!"), Err(KeyError::Malformed)));
        assert!(matches!(MasterKey::from_base64(&B64.encode([1u8; 16])), Err(KeyError::Malformed)));
    }
}
