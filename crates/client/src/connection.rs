//! The TLS WebSocket to the server, speaking whole frames.
//!
//! [`Connection`] owns the socket and is the only place that touches WebSocket
//! messages: callers send [`ClientFrame`]s and receive [`ServerFrame`]s, with the
//! protocol's size limit enforced here. It has no idea what the frames mean.

use crate::{
    address::{AddressError, ServerAddress},
    error::{ClientError, Result},
    fingerprint::Fingerprint,
    trust::Trust,
};
use conclave_proto::{
    ClientFrame, ServerFrame, WEBSOCKET_PATH,
    limits::{MAX_FRAME_BYTES, MAX_SERVER_FRAME_BYTES},
};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use std::{sync::Arc, time::Duration};
use tokio::{net::TcpStream, time::timeout};
use tokio_rustls::{TlsConnector, client::TlsStream};
use tokio_tungstenite::{
    WebSocketStream, client_async_with_config,
    tungstenite::{self, Message, protocol::WebSocketConfig},
};

/// A received frame's undecoded JSON text, sharing the socket's buffer.
pub type FrameText = tungstenite::Utf8Bytes;

/// Decodes one server frame, as [`Connection::next_frame`] does.
///
/// # Errors
/// [`ClientError::Protocol`] for text that is not one valid frame.
pub fn decode_server_frame(text: &str) -> Result<ServerFrame> {
    ServerFrame::decode(text, MAX_SERVER_FRAME_BYTES)
        .map_err(|err| ClientError::Protocol(format!("the server sent an invalid frame: {err}")))
}

/// Longest wait for each step of connecting: TCP, TLS handshake, WebSocket upgrade.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for the server's answer to our close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// An open, authenticated-server TLS 1.3 WebSocket.
#[derive(Debug)]
pub struct Connection {
    /// The socket. Reading also answers pings (tungstenite queues the pong).
    ws: WebSocketStream<TlsStream<TcpStream>>,
    /// Where it goes, for messages.
    server: ServerAddress,
    /// The largest frame the server accepts: larger requests are refused here,
    /// since the server would close the connection on them.
    frame_limit: usize,
    /// The public key fingerprint of the certificate the server presented.
    server_key: Option<Fingerprint>,
}

impl Connection {
    /// Connects to `wss://SERVER/ws`, authenticating the server by `trust`.
    ///
    /// Nothing at all is sent over TLS unless the server's certificate passed the
    /// check: with [`Trust::FirstUse`] this always fails with
    /// [`ClientError::UnknownServer`].
    ///
    /// # Errors
    /// [`ClientError::Connect`] or [`ClientError::Timeout`] when the server cannot
    /// be reached; [`ClientError::UnknownServer`],
    /// [`ClientError::CertificateChanged`], [`ClientError::Tls`] or
    /// [`ClientError::CaFile`] when it cannot be authenticated;
    /// [`ClientError::WebSocket`] when the upgrade is refused.
    ///
    /// Cancel-safe: dropping the future drops the half-open connection.
    pub async fn connect(server: &ServerAddress, trust: &Trust) -> Result<Self> {
        let (config, observed) = trust.client_config()?;
        let connector = TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from(server.host().to_owned()).map_err(|_| AddressError {
            input: server.to_string(),
            reason: "not a valid DNS name or IP address",
        })?;

        let tcp = timeout(CONNECT_TIMEOUT, TcpStream::connect((server.host(), server.port())))
            .await
            .map_err(|_| ClientError::Timeout { waiting_for: "the TCP connection" })?
            .map_err(|source| ClientError::Connect { server: server.to_string(), source })?;
        tcp.set_nodelay(true)?;

        let tls = timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| ClientError::Timeout { waiting_for: "the TLS handshake" })?
            .map_err(|err| trust.handshake_error(err, &observed))?;

        let server_key = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| Fingerprint::of_public_key(leaf.as_ref()).ok());
        let url = format!("wss://{server}{WEBSOCKET_PATH}");
        // tungstenite zero-fills the part of its buffer it reads into before each
        // read (128 KiB by default), which made reading cost more than the data.
        // 4 KiB holds several frames of a busy room (the server's buffer is the
        // same size); a large frame is read in more steps, not more system calls
        // (rustls holds the decrypted record).
        let config = WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .max_frame_size(Some(MAX_SERVER_FRAME_BYTES))
            .max_message_size(Some(MAX_SERVER_FRAME_BYTES));
        let (ws, _response) = timeout(CONNECT_TIMEOUT, client_async_with_config(url, tls, Some(config)))
            .await
            .map_err(|_| ClientError::Timeout { waiting_for: "the WebSocket upgrade" })??;
        tracing::debug!(%server, "connected");
        Ok(Self { ws, server: server.clone(), frame_limit: MAX_FRAME_BYTES, server_key })
    }

    /// The SHA-256 fingerprint of the public key of the certificate the server
    /// presented (what a pin names from now on).
    #[must_use]
    pub fn server_key(&self) -> Option<Fingerprint> {
        self.server_key
    }

    /// The server this connection goes to.
    #[must_use]
    pub fn server(&self) -> &ServerAddress {
        &self.server
    }

    /// Sets the largest frame [`send`](Self::send) writes: the limit the server
    /// announced in its `hello` reply (until then, the protocol's default).
    pub fn set_frame_limit(&mut self, bytes: usize) {
        self.frame_limit = bytes;
    }

    /// Sends one frame.
    ///
    /// # Errors
    /// [`ClientError::FrameTooLarge`], before anything is written, for a frame
    /// over the server's limit; [`ClientError::WebSocket`] or
    /// [`ClientError::Closed`] when the socket fails.
    ///
    /// Not cancel-safe: if the future is dropped, part of the frame may have been
    /// written and the connection must be dropped too.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        let text = frame.encode();
        if text.len() > self.frame_limit {
            return Err(ClientError::FrameTooLarge { bytes: text.len(), limit: self.frame_limit });
        }
        self.ws.send(Message::Text(text.into())).await.map_err(read_error)
    }

    /// Waits for the next frame from the server. Control messages (ping, pong) are
    /// handled underneath and never returned.
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the server closed the connection,
    /// [`ClientError::Protocol`] for a message that is not one valid frame,
    /// [`ClientError::WebSocket`] for socket failures.
    ///
    /// Cancel-safe: a frame is either returned or stays buffered for the next call,
    /// so this can sit in a `select!`.
    pub async fn next_frame(&mut self) -> Result<ServerFrame> {
        let text = self.next_text().await?;
        decode_server_frame(&text)
    }

    /// Waits for the next frame from the server as its undecoded JSON text, for
    /// callers that look at a few fields of most frames (a load generator
    /// counting entries); decode it with [`decode_server_frame`].
    ///
    /// # Errors
    /// As [`next_frame`](Self::next_frame), but the text is not checked.
    ///
    /// Cancel-safe, like `next_frame`.
    pub async fn next_text(&mut self) -> Result<FrameText> {
        loop {
            let Some(message) = self.ws.next().await else {
                return Err(ClientError::Closed { reason: None });
            };
            match message.map_err(read_error)? {
                Message::Text(text) => return Ok(text),
                Message::Binary(_) => {
                    return Err(ClientError::Protocol("the server sent a binary message".into()));
                }
                Message::Close(frame) => {
                    let reason = frame.map(|f| f.reason.to_string()).filter(|r| !r.is_empty());
                    return Err(ClientError::Closed { reason });
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// Closes the connection cleanly: sends a close frame and waits briefly for the
    /// server's.
    ///
    /// # Errors
    /// [`ClientError::WebSocket`] when the close frame cannot be sent. A server that
    /// has already gone away is not an error.
    pub async fn close(mut self) -> Result<()> {
        match self.ws.close(None).await {
            Ok(()) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return Ok(()),
            Err(err) => return Err(err.into()),
        }
        let drain = async { while let Some(Ok(_)) = self.ws.next().await {} };
        // The server's close frame is a courtesy; not waiting for it is harmless.
        if timeout(CLOSE_TIMEOUT, drain).await.is_err() {
            tracing::debug!(server = %self.server, "no close frame from the server in time");
        }
        Ok(())
    }
}

/// Maps socket errors, turning the "it is closed" family into [`ClientError::Closed`].
fn read_error(err: tungstenite::Error) -> ClientError {
    match err {
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            ClientError::Closed { reason: None }
        }
        other => other.into(),
    }
}
