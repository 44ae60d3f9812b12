use std::time::Duration;

use async_trait::async_trait;

use crate::ClaimedDelivery;

/// The kind of a [`crate::Target`], for sinks to say what they can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// [`crate::Target::DiscordChannel`].
    DiscordChannel,
    /// [`crate::Target::DiscordWebhook`].
    DiscordWebhook,
    /// [`crate::Target::Http`].
    Http,
}

impl TargetKind {
    /// The `kind` tag in a serialized target.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::DiscordChannel => "discord_channel",
            TargetKind::DiscordWebhook => "discord_webhook",
            TargetKind::Http => "http",
        }
    }

    /// Whether messages to one target of this kind must arrive in order
    /// (a Discord channel or webhook): one sender at a time per target,
    /// across every process sharing the store.
    pub fn is_ordered(self) -> bool {
        matches!(self, TargetKind::DiscordChannel | TargetKind::DiscordWebhook)
    }
}

/// A delivery that arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOutcome {
    /// HTTP status of the final response.
    pub status: Option<u16>,
    /// The first KiB of the response body.
    pub response_excerpt: Option<String>,
    /// The chat message created or edited, when the send asked for it (a
    /// message with a [`crate::Message::subject`]).
    pub message_id: Option<String>,
    /// The Discord thread the send started for the message's
    /// [`crate::Message::thread`].
    pub thread_id: Option<String>,
}

/// A delivery that did not arrive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt: 5xx, 429, timeouts, connection errors.
    #[error("{message}")]
    Retryable {
        /// HTTP status, if a response arrived.
        status: Option<u16>,
        /// What happened.
        message: String,
        /// The destination asked to wait this long (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Will fail the same way again: bad request, unknown channel, missing
    /// permissions, no such target.
    #[error("{message}")]
    Permanent {
        /// HTTP status, if a response arrived.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// The destination's own limit (rate or concurrency) holds this send
    /// back; nothing was sent, so no attempt is counted.
    #[error("held back for {retry_after:?} by the destination's limit")]
    Throttled {
        /// When to try again.
        retry_after: Duration,
    },
    /// The destination said it is gone for good (HTTP 410): the
    /// subscription is disabled.
    #[error("{message}")]
    Gone {
        /// What happened.
        message: String,
    },
    /// The destination refuses for a reason only a person can fix (a
    /// deleted Discord webhook, a revoked token): its deliveries wait,
    /// untried, until it is replaced, instead of spending the destination's
    /// patience on requests bound to fail.
    #[error("{message}")]
    Broken {
        /// HTTP status.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
}

impl SendError {
    /// The HTTP status, if a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            SendError::Retryable { status, .. }
            | SendError::Permanent { status, .. }
            | SendError::Broken { status, .. } => *status,
            SendError::Gone { .. } => Some(410),
            SendError::Throttled { .. } => None,
        }
    }
}

/// Something that can carry a delivery to its destination.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// The target kinds this sink can send to; deliveries for others wait.
    fn kinds(&self) -> Vec<TargetKind>;

    /// Make one attempt.
    async fn send(&self, delivery: &ClaimedDelivery) -> Result<SendOutcome, SendError>;

    /// Whether deliveries to one target of this kind go out one send at a
    /// time, oldest first: chat channels, where order matters and the
    /// destination's rate limit is per target.
    fn serial(&self, _kind: TargetKind) -> bool {
        false
    }

    /// How many deliveries from the front of `pending` (all to one target of
    /// a [`Sink::serial`] kind, oldest first) one send can carry. At least 1.
    fn pack(&self, _pending: &[ClaimedDelivery]) -> usize {
        1
    }

    /// Carry `deliveries` (a prefix [`Sink::pack`] accepted) in one send;
    /// they share its outcome.
    async fn send_packed(&self, deliveries: &[ClaimedDelivery]) -> Result<SendOutcome, SendError> {
        match deliveries {
            [one] => self.send(one).await,
            _ => Err(SendError::Permanent {
                status: None,
                message: format!("this sink sends one delivery at a time, not {}", deliveries.len()),
            }),
        }
    }
}
