use std::{fmt, str::FromStr};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// An identifier or name did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Agent names are 1–64 characters of `a-z`, `0-9`, `-` and `_`,
    /// starting with a letter or digit.
    #[error("invalid agent name {0:?}: use 1-64 characters of a-z, 0-9, '-' and '_'")]
    AgentName(String),
    /// The id does not carry the expected prefix or alphabet.
    #[error("invalid {kind} id {value:?}")]
    Id {
        /// Which kind of id was expected.
        kind: &'static str,
        /// The value that was given.
        value: String,
    },
}

/// `prefix` followed by `bytes` random bytes from the OS CSPRNG, URL-safe base64.
pub fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    let mut out = String::with_capacity(prefix.len() + bytes * 4 / 3 + 2);
    out.push_str(prefix);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&buf, &mut out);
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id with 128 random bits.
            pub fn generate() -> Self {
                Self(random_token($prefix, 16))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let ok = s.len() <= 64
                    && s.len() > $prefix.len()
                    && s.starts_with($prefix)
                    && s.chars().all(is_token_char);
                if ok {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::Id { kind: $kind, value: s.to_owned() })
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

token_id!(
    /// An incoming or outgoing hook: `hk_` and 128 random bits, so the hook
    /// URL cannot be guessed.
    HookId, "hk_", "hook"
);
token_id!(
    /// A stored incoming event.
    EventId, "evt_", "event"
);
token_id!(
    /// One delivery of a message to one destination; stable across retries.
    DeliveryId, "dlv_", "delivery"
);

/// The name of an agent: the path segment in `/webhook/{agent}/{hook_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgentName(String);

impl AgentName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AgentName {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok { Ok(Self(s.to_owned())) } else { Err(IdError::AgentName(s.to_owned())) }
    }
}

impl TryFrom<String> for AgentName {
    type Error = IdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<AgentName> for String {
    fn from(n: AgentName) -> String {
        n.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_are_distinct() {
        let a = HookId::generate();
        let b = HookId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 3 + 22);
        assert_eq!(a.as_str().parse::<HookId>().unwrap(), a);
    }

    #[test]
    fn ids_reject_wrong_prefix_and_alphabet() {
        assert!("evt_abc".parse::<HookId>().is_err());
        assert!("hk_".parse::<HookId>().is_err());
        assert!("hk_a/b".parse::<HookId>().is_err());
        assert!("hk_abc".parse::<HookId>().is_ok());
    }

    #[test]
    fn agent_names() {
        assert!("builder".parse::<AgentName>().is_ok());
        assert!("ci-bot_2".parse::<AgentName>().is_ok());
        for bad in ["", "-x", "Builder", "a b", "a/b", &"a".repeat(65)] {
            assert!(bad.parse::<AgentName>().is_err(), "{bad:?} accepted");
        }
    }
}
