//! [`Connection`]: one client's WebSocket, speaking frames. Size limits are
//! enforced here (by tungstenite's WebSocket state machine, configured at
//! upgrade) and nowhere else; the session above never sees bytes. Until the
//! session lifts it at login, a message may be at most
//! [`MAX_UNAUTHENTICATED_FRAME_BYTES`]: a stranger cannot make the server
//! buffer a megabyte per connection.
//!
//! The socket itself is a [`Wire`], shared with the fan-out, which writes
//! pushed frames into it directly; this side reads requests and writes the
//! session's answers and its close.

use crate::{
    metrics::Metrics,
    wire::{self, Frame, Plain, Wire},
};
use conclave_proto::{ClientFrame, FrameError, ServerFrame, limits::MAX_UNAUTHENTICATED_FRAME_BYTES};
use std::{io, sync::Arc, time::Duration};
use tokio_tungstenite::tungstenite::{
    self, Message,
    protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext, frame::Frame as WsFrame},
};

pub use tungstenite::protocol::frame::coding::CloseCode;

/// What arrived from the peer.
#[derive(Debug)]
pub enum Inbound {
    /// A well-formed request frame.
    Frame(ClientFrame),
    /// A text message that is not a valid frame (answered with `bad_request`).
    Invalid(FrameError),
    /// The peer closed the connection, or it broke.
    Closed,
}

/// Initial WebSocket read buffer per connection: memory per idle connection is
/// what bounds how many a node holds. Reads grow it for a large message.
const READ_BUFFER_BYTES: usize = 4096;

/// Longest wait for a close frame to go out to a client that does not read.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// One client's WebSocket.
pub struct Connection {
    wire: Arc<Wire>,
    /// tungstenite's WebSocket state (frame parsing, limits, pongs), without
    /// the socket: each call is handed the wire.
    ws: WebSocketContext,
    /// The largest message read now: the pre-login bound, then the server's
    /// `max_frame_bytes` after [`Connection::lift_frame_limit`].
    max_frame_bytes: usize,
    /// The server's `max_frame_bytes`, for after login.
    authenticated_frame_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Connection {
    /// Speaks WebSocket on `wire`, whose upgrade is done; `early` holds bytes
    /// of the protocol read along with the upgrade request. Messages over
    /// [`MAX_UNAUTHENTICATED_FRAME_BYTES`] are refused until
    /// [`lift_frame_limit`](Self::lift_frame_limit), then those over
    /// `max_frame_bytes`.
    pub(crate) fn new(
        wire: Arc<Wire>,
        early: Vec<u8>,
        authenticated_frame_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let max_frame_bytes = authenticated_frame_bytes.min(MAX_UNAUTHENTICATED_FRAME_BYTES);
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            // Control frames tungstenite writes (pongs, close replies) go out at once.
            .write_buffer_size(0)
            .max_frame_size(Some(max_frame_bytes))
            .max_message_size(Some(max_frame_bytes));
        let ws = WebSocketContext::from_partially_read(early, Role::Server, Some(config));
        Self { wire, ws, max_frame_bytes, authenticated_frame_bytes, metrics }
    }

    /// The peer logged in: messages up to the server's `max_frame_bytes` are
    /// read from now on.
    pub(crate) fn lift_frame_limit(&mut self) {
        let limit = self.authenticated_frame_bytes;
        self.max_frame_bytes = limit;
        self.ws.set_config(|config| {
            config.max_frame_size = Some(limit);
            config.max_message_size = Some(limit);
        });
    }

    /// The socket, for the fan-out.
    pub(crate) fn wire(&self) -> &Arc<Wire> {
        &self.wire
    }

    /// Reads the next frame. WebSocket pings are answered underneath. A message
    /// over the limit closes the connection with code 1009 (message too big)
    /// before it is buffered whole; a text message that is not UTF-8 closes it
    /// with code 1007 (invalid payload data), as RFC 6455 section 8.1 asks.
    ///
    /// Cancel-safe: it waits only for the socket to become readable, and what
    /// was read stays in the TLS and WebSocket buffers.
    pub async fn read_frame(&mut self) -> Inbound {
        loop {
            let message = match self.ws.read(&mut Plain(&self.wire)) {
                Ok(message) => message,
                Err(tungstenite::Error::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => {
                    if self.wire.readable().await.is_err() {
                        return Inbound::Closed;
                    }
                    continue;
                }
                Err(tungstenite::Error::Utf8(_)) => {
                    // The error carries the message's text: it is not logged.
                    self.metrics.frame_errors.inc();
                    tracing::debug!("closing connection: a text message is not valid UTF-8");
                    self.send_close(CloseCode::Invalid, "text message is not valid UTF-8").await;
                    return Inbound::Closed;
                }
                Err(err) => {
                    tracing::debug!(error = %err, "WebSocket read ended");
                    self.on_read_error(&err).await;
                    return Inbound::Closed;
                }
            };
            match message {
                Message::Text(text) => return self.decode_text(text.as_str()),
                Message::Binary(_) => {
                    self.metrics.frame_errors.inc();
                    return Inbound::Invalid(FrameError::Malformed {
                        id: None,
                        reason: "binary messages are not part of the protocol: send JSON text".into(),
                    });
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(_) => {
                    // tungstenite queued the close reply; send it on the way out.
                    self.ws.flush(&mut Plain(&self.wire)).ok();
                    return Inbound::Closed;
                }
            }
        }
    }

    /// Decodes one text message into a frame under the limit in force, and
    /// counts it. [`read_frame`](Self::read_frame) does this for every text
    /// message; the fuzz targets call it with their input.
    pub(crate) fn decode_text(&self, text: &str) -> Inbound {
        self.metrics.frames_in.inc();
        match ClientFrame::decode(text, self.max_frame_bytes) {
            Ok(frame) => Inbound::Frame(frame),
            Err(err) => {
                self.metrics.frame_errors.inc();
                Inbound::Invalid(err)
            }
        }
    }

    /// Sends one frame.
    ///
    /// # Errors
    /// If the socket is closed or broken.
    pub async fn write_frame(&mut self, frame: &ServerFrame) -> io::Result<()> {
        self.wire.send(&wire::frame_text(frame.encode())).await?;
        self.metrics.frames_out.inc();
        Ok(())
    }

    /// Does the writing pushes left ([`Wire::has_work`] says when): bytes the
    /// socket would not take at once, then a `resync` owed, as far as the
    /// socket takes them without waiting.
    ///
    /// # Errors
    /// If the socket is closed or broken.
    pub fn catch_up(&self, resync: &Frame) -> io::Result<()> {
        self.wire.catch_up(resync)
    }

    /// Sends a close frame with `code` and `reason` after whatever is pending,
    /// then lets the socket go.
    pub async fn close(self, code: CloseCode, reason: &'static str) {
        self.send_close(code, reason).await;
    }

    /// Writes a close frame and TLS's close notification; after them, nothing.
    async fn send_close(&self, code: CloseCode, reason: &'static str) {
        let frame = WsFrame::close(Some(CloseFrame { code, reason: reason.into() }));
        let mut bytes = Vec::with_capacity(frame.len());
        if frame.format(&mut bytes).is_ok() {
            // The peer may already be gone, or not reading; there is nothing
            // more to do then.
            tokio::time::timeout(CLOSE_TIMEOUT, self.wire.close(&bytes)).await.ok();
        }
    }

    async fn on_read_error(&mut self, err: &tungstenite::Error) {
        if matches!(err, tungstenite::Error::Capacity(_)) {
            self.metrics.frame_errors.inc();
            tracing::info!(limit = self.max_frame_bytes, "closing connection: message over the size limit");
            self.send_close(CloseCode::Size, "message too big").await;
        }
    }
}
