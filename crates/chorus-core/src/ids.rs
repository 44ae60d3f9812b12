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

/// Base64 over its 64 URL-safe symbols in ASCII order, so that text order is
/// numeric order.
const SORTED: base64::engine::GeneralPurpose = {
    let Ok(alphabet) =
        base64::alphabet::Alphabet::new("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
    else {
        panic!("64 distinct ASCII symbols")
    };
    base64::engine::GeneralPurpose::new(&alphabet, base64::engine::general_purpose::NO_PAD)
};

/// `prefix`, then 48 bits of milliseconds since the Unix epoch and 80 random
/// bits, encoded so that ids sort by creation time.
///
/// Stored records are indexed by id; random ids scatter every insert over the
/// whole index, so each group commit dirtied (and wrote to the WAL) one page
/// per row. Time-ordered ids append to the same few pages.
pub fn ordered_token(prefix: &str) -> String {
    // Wall time, not an injected clock: order only has to hold roughly, and
    // ids are made far from any clock a test pins.
    let millis = crate::Clock::now(&crate::SystemClock).as_millisecond().max(0) as u64;
    let mut buf = [0u8; 16];
    buf[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    getrandom::fill(&mut buf[6..]).expect("the operating system's random source failed");
    let mut out = String::with_capacity(prefix.len() + 22);
    out.push_str(prefix);
    SORTED.encode_string(buf, &mut out);
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal, $make:path, $gen_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            #[doc = $gen_doc]
            pub fn generate() -> Self {
                Self($make($prefix, 16))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        #[cfg(feature = "schema")]
        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": concat!("^", $prefix, "[A-Za-z0-9_-]+$"),
                    "maxLength": 64,
                })
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
    HookId, "hk_", "hook", random_token, "A fresh id with 128 random bits."
);
token_id!(
    /// A stored incoming event.
    EventId, "evt_", "event", ordered, "A fresh id: creation time, then 80 random bits."
);
token_id!(
    /// One delivery of a message to one destination; stable across retries.
    DeliveryId, "dlv_", "delivery", ordered, "A fresh id: creation time, then 80 random bits."
);
token_id!(
    /// One run of a workflow.
    RunId, "run_", "run", ordered, "A fresh id: creation time, then 80 random bits."
);
token_id!(
    /// One approval gate of a run: unguessable, since it travels in the
    /// buttons of a chat message.
    ApprovalId, "apr_", "approval", random_token, "A fresh id with 128 random bits."
);

fn ordered(prefix: &str, _bytes: usize) -> String {
    ordered_token(prefix)
}

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

#[cfg(feature = "schema")]
impl schemars::JsonSchema for AgentName {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AgentName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": AgentName::PATTERN})
    }
}

impl AgentName {
    /// What a name may be, as a regular expression.
    pub const PATTERN: &'static str = "^[a-z0-9][a-z0-9_-]{0,63}$";
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
    fn ordered_ids_sort_by_creation_and_parse() {
        let ids: Vec<DeliveryId> = (0..50)
            .map(|i| {
                if i % 10 == 0 {
                    // Cross millisecond boundaries, where order is defined.
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                DeliveryId::generate()
            })
            .collect();
        for id in &ids {
            assert_eq!(id.as_str().len(), 4 + 22);
            assert_eq!(&id.as_str().parse::<DeliveryId>().unwrap(), id);
        }
        let boundaries: Vec<&DeliveryId> = ids.iter().step_by(10).collect();
        assert!(boundaries.windows(2).all(|w| w[0] < w[1]), "{boundaries:?}");
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
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
