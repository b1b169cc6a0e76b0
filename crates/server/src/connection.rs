//! [`Connection`]: owns one WebSocket and speaks frames. Size limits are enforced
//! here (by the WebSocket layer, configured at upgrade) and nowhere else; the
//! session above never sees bytes.

use crate::metrics::Metrics;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use conclave_proto::{ClientFrame, FrameError, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio_tungstenite::tungstenite;

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

/// One client's WebSocket.
pub struct Connection {
    socket: WebSocket,
    max_frame_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Connection {
    /// Wraps an upgraded socket whose limits are already set to `max_frame_bytes`.
    pub fn new(socket: WebSocket, max_frame_bytes: usize, metrics: Arc<Metrics>) -> Self {
        Self { socket, max_frame_bytes, metrics }
    }

    /// Reads the next frame. WebSocket pings are answered by the socket itself.
    /// A message over the limit closes the connection with code 1009 (message too
    /// big) before it is buffered whole.
    ///
    /// Cancel-safe: no frame is lost if the future is dropped before completion.
    pub async fn read_frame(&mut self) -> Inbound {
        loop {
            let message = match self.socket.next().await {
                None => return Inbound::Closed,
                Some(Ok(message)) => message,
                Some(Err(err)) => {
                    self.on_read_error(err).await;
                    return Inbound::Closed;
                }
            };
            match message {
                Message::Text(text) => {
                    self.metrics.frames_in.inc();
                    return match ClientFrame::decode(text.as_str(), self.max_frame_bytes) {
                        Ok(frame) => Inbound::Frame(frame),
                        Err(err) => {
                            self.metrics.frame_errors.inc();
                            Inbound::Invalid(err)
                        }
                    };
                }
                Message::Binary(_) => {
                    self.metrics.frame_errors.inc();
                    return Inbound::Invalid(FrameError::Malformed {
                        id: None,
                        reason: "binary messages are not part of the protocol: send JSON text".into(),
                    });
                }
                Message::Ping(_) | Message::Pong(_) => {}
                Message::Close(_) => return Inbound::Closed,
            }
        }
    }

    /// Sends one frame.
    ///
    /// # Errors
    /// If the socket is closed or broken.
    pub async fn write_frame(&mut self, frame: &ServerFrame) -> Result<(), axum::Error> {
        self.socket.send(Message::Text(frame.encode().into())).await?;
        self.metrics.frames_out.inc();
        Ok(())
    }

    /// Sends frames that are already encoded (fan-out frames shared by many
    /// connections), written together and flushed once, so a burst costs one TLS
    /// record and one system call rather than one per frame. Empties `frames`.
    ///
    /// # Errors
    /// If the socket is closed or broken.
    pub async fn write_encoded(&mut self, frames: &mut Vec<Utf8Bytes>) -> Result<(), axum::Error> {
        let written = frames.len() as u64;
        for frame in frames.drain(..) {
            self.socket.feed(Message::Text(frame)).await?;
        }
        self.socket.flush().await?;
        self.metrics.frames_out.inc_by(written);
        Ok(())
    }

    /// Sends a close frame with `code` and `reason`, then lets the socket go.
    pub async fn close(mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame { code, reason: reason.into() };
        // The peer may already be gone; there is nothing more to do then.
        self.socket.send(Message::Close(Some(frame))).await.ok();
        self.socket.close().await.ok();
    }

    async fn on_read_error(&mut self, err: axum::Error) {
        let too_big = err
            .into_inner()
            .downcast_ref::<tungstenite::Error>()
            .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
        if too_big {
            self.metrics.frame_errors.inc();
            tracing::info!(limit = self.max_frame_bytes, "closing connection: message over the size limit");
            let frame = CloseFrame { code: close_code::SIZE, reason: "message too big".into() };
            self.socket.send(Message::Close(Some(frame))).await.ok();
        }
    }
}
