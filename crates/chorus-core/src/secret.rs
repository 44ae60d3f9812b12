use std::fmt;

use subtle::ConstantTimeEq;

use crate::ids::random_token;

/// A shared secret: a hook's signing key, a bearer token.
///
/// `Debug` and `Display` never show the value, so a secret that ends up in a
/// log line or an error message leaks nothing.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wrap an existing secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// 32 random bytes from the OS CSPRNG, URL-safe base64 (43 characters).
    pub fn generate() -> Self {
        Self(random_token("", 32))
    }

    /// A Standard Webhooks secret: `whsec_` and 32 random bytes, standard base64.
    pub fn generate_standard() -> Self {
        use base64::Engine as _;
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf).expect("the operating system's random source failed");
        Self(format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(buf)))
    }

    /// The secret value. Call only where the value must leave the process
    /// (the one create response) or feed a MAC.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a candidate value.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(candidate).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other.0.as_bytes())
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn generated_shapes() {
        let s = Secret::generate();
        assert_eq!(s.expose().len(), 43);
        assert_ne!(s, Secret::generate());
        let w = Secret::generate_standard();
        assert!(w.expose().starts_with("whsec_"));
    }

    #[test]
    fn matches_is_exact() {
        let s = Secret::new("abc");
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"abd"));
        assert!(!s.matches(b"ab"));
        assert!(!s.matches(b"abcd"));
    }
}
