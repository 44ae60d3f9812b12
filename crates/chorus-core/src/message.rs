use serde::{Deserialize, Serialize};

/// A chat-neutral rich message: what a formatter makes of a payload and what a
/// sink renders for its chat service.
///
/// Formatters do not enforce any chat service's limits; the sink truncates to
/// its own (Discord's embed limits live in chorus-discord).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// One-line headline, e.g. "[octo/repo] 3 new commits to main".
    pub title: String,
    /// Where the headline links to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Body text (Markdown).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Who caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Link to the author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_url: Option<String>,
    /// Accent colour, `0xRRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<u32>,
    /// Labelled values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    /// Small print: source, event type, event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// When the event happened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Buttons under the message (an approval's Approve / Deny). A message
    /// with buttons is always sent on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
    /// What this message is about when later events update it (a CI run,
    /// a pipeline): messages with the same subject to the same target are
    /// one Discord message, edited in place as the subject moves on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The pull request or incident this message is about, for hooks that
    /// give each one a Discord thread: the first message about it starts
    /// the thread, later ones go into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
}

/// A button under a [`Message`]; a click comes back with its `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// What a click reports (at most 100 characters).
    pub id: String,
    /// The text on it.
    pub label: String,
    /// How it looks.
    #[serde(default)]
    pub style: ButtonStyle,
}

/// How a [`Button`] looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonStyle {
    /// The usual action.
    #[default]
    Primary,
    /// A neutral one.
    Secondary,
    /// A go-ahead (green).
    Success,
    /// A refusal or a destructive action (red).
    Danger,
}

/// One labelled value of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The label.
    pub name: String,
    /// The value (Markdown).
    pub value: String,
    /// Whether the field may sit beside its neighbours.
    #[serde(default)]
    pub inline: bool,
}

impl Message {
    /// A message with only a title.
    pub fn titled(title: impl Into<String>) -> Self {
        Self { title: title.into(), ..Self::default() }
    }

    /// Append a field.
    #[must_use]
    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>, inline: bool) -> Self {
        self.fields.push(Field { name: name.into(), value: value.into(), inline });
        self
    }
}
