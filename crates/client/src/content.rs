//! What travels inside the MLS ciphertext of an application message: a small
//! versioned JSON document, so later versions can add edits, receipts and files
//! without breaking older clients (they show what they do not understand as
//! such, never garbage).

use serde::{Deserialize, Serialize};

/// The content format version this client writes.
pub const CONTENT_VERSION: u32 = 1;

/// One application message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// Format version.
    pub v: u32,
    /// What it is.
    #[serde(flatten)]
    pub body: Body,
}

/// The kinds of content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// A text message.
    Text {
        /// The text, as typed.
        text: String,
    },
    /// "I am typing": sent only as an ephemeral signal, never stored.
    Typing {},
    /// Anything this version does not know.
    #[serde(other)]
    Unknown,
}

impl Content {
    /// A text message.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self { v: CONTENT_VERSION, body: Body::Text { text: text.into() } }
    }

    /// A typing indicator.
    #[must_use]
    pub fn typing() -> Self {
        Self { v: CONTENT_VERSION, body: Body::Typing {} }
    }

    /// Serialises for encryption.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses decrypted bytes; `None` if they are not a content document.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The text to show: the message, or a note for unknown kinds.
    #[must_use]
    pub fn display_text(&self) -> String {
        match &self.body {
            Body::Text { text } => text.clone(),
            Body::Typing {} | Body::Unknown => "[a message this version of Conclave cannot show]".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_kinds() {
        let c = Content::text("hello");
        assert_eq!(String::from_utf8(c.encode()).unwrap(), r#"{"v":1,"type":"text","text":"hello"}"#);
        assert_eq!(Content::decode(&c.encode()), Some(c));
        let future = Content::decode(br#"{"v":2,"type":"poll","question":"?"}"#).unwrap();
        assert_eq!(future.body, Body::Unknown);
        assert_eq!(Content::decode(b"\xff"), None);
    }
}
