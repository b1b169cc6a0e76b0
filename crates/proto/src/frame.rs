//! Frame envelopes and their size-checked encoding.
//!
//! One WebSocket text message is one frame. Decoding checks the size first, then
//! parses strictly: unknown fields, unknown request types and trailing data are all
//! errors, reported with the request id when it could be read.

use crate::{event::Event, limits::MAX_FRAME_BYTES, request::Request, response::Response};
use serde::{Deserialize, Serialize};

/// A client → server frame: one request and the id its response will carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFrame {
    /// Chosen by the client, echoed in the response. Ids need not be sequential;
    /// `0` is reserved for responses to frames whose id could not be read.
    pub id: u64,
    /// The request.
    pub request: Request,
}

/// A server → client frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The response to one request.
    Response(Response),
    /// An event the server pushes.
    Event {
        /// The event.
        event: Event,
    },
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Larger than the limit; not parsed at all.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the frame.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// Not a valid frame. `id` is the request id if it could be read, so the
    /// error can still be matched to its request.
    #[error("malformed frame: {reason}")]
    Malformed {
        /// The request id, if readable.
        id: Option<u64>,
        /// What was wrong, for the peer (no server internals).
        reason: String,
    },
}

impl ClientFrame {
    /// Encodes to the JSON text sent in one WebSocket message.
    ///
    /// # Panics
    /// Never: every field is plain data that serde_json can always encode.
    #[must_use]
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("client frames always serialize")
    }

    /// Decodes and validates one frame of at most `max` bytes.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] before parsing when `text` is over `max`;
    /// [`FrameError::Malformed`] for anything that is not exactly one valid frame.
    pub fn decode(text: &str, max: usize) -> Result<Self, FrameError> {
        check_size(text, max)?;
        serde_json::from_str(text)
            .map_err(|err| FrameError::Malformed { id: read_id(text), reason: err.to_string() })
    }
}

impl ServerFrame {
    /// Encodes to the JSON text sent in one WebSocket message.
    ///
    /// # Panics
    /// Never: every field is plain data that serde_json can always encode.
    #[must_use]
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }

    /// Decodes one server frame of at most `max` bytes.
    ///
    /// # Errors
    /// As [`ClientFrame::decode`].
    pub fn decode(text: &str, max: usize) -> Result<Self, FrameError> {
        check_size(text, max)?;
        serde_json::from_str(text)
            .map_err(|err| FrameError::Malformed { id: read_id(text), reason: err.to_string() })
    }
}

/// The default frame limit, for callers that do not configure one.
pub const DEFAULT_MAX: usize = MAX_FRAME_BYTES;

fn check_size(text: &str, max: usize) -> Result<(), FrameError> {
    if text.len() > max {
        return Err(FrameError::TooLarge { len: text.len(), max });
    }
    Ok(())
}

/// Best-effort read of the `id` of a frame that failed strict parsing.
fn read_id(text: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: u64,
    }
    serde_json::from_str::<IdOnly>(text).ok().map(|f| f.id)
}

#[cfg(test)]
mod tests;
