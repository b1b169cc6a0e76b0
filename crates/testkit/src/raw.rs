//! Direct protocol and HTTPS access to a server, for tests of what the CLI never
//! sends: malformed frames, oversized messages, wrong protocol versions, TLS 1.2.

use conclave_proto::{
    ClientFrame, ErrorCode, Event, Outcome, PROTOCOL_VERSION, Reply, Request, Response, ServerFrame,
    limits::MAX_FRAME_BYTES,
};
use futures_util::{SinkExt, StreamExt};
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use sha2::{Digest, Sha256};
use std::{
    collections::VecDeque,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::WebSocketConfig},
};

/// Accepts certificates whose public key (SubjectPublicKeyInfo) has the given
/// SHA-256 fingerprint, the one `conclave serve` prints.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| rustls::Error::General(format!("certificate does not parse: {e}")))?;
        if hex::encode(Sha256::digest(parsed.subject_public_key_info().as_ref())) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("public key fingerprint mismatch".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn connector(
    fingerprint: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[u8],
) -> TlsConnector {
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Pinned {
        fingerprint: fingerprint.to_owned(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

async fn try_tls(addr: SocketAddr, fingerprint: &str) -> std::io::Result<TlsStream<TcpStream>> {
    try_tls_from(None, addr, fingerprint).await
}

/// TCP from `source` (any loopback address, when given: the whole 127.0.0.0/8
/// reaches a server on 127.0.0.1, so tests can play several clients' addresses),
/// then the TLS 1.3 handshake.
async fn try_tls_from(
    source: Option<IpAddr>,
    addr: SocketAddr,
    fingerprint: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = match source {
        None => TcpStream::connect(addr).await?,
        Some(source) => {
            let socket = if source.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            socket.bind(SocketAddr::new(source, 0))?;
            socket.connect(addr).await?
        }
    };
    connector(fingerprint, &[&rustls::version::TLS13], b"http/1.1")
        .connect(ServerName::try_from("localhost").expect("a valid name"), tcp)
        .await
}

/// Tries a TLS 1.2-only handshake; returns the error (a TLS 1.3-only server must
/// refuse it).
///
/// # Errors
/// The handshake error, which is the expected outcome.
pub async fn tls12_handshake(addr: SocketAddr, fingerprint: &str) -> Result<(), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    connector(fingerprint, &[&rustls::version::TLS12], b"http/1.1")
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `GET path` over HTTPS (TLS 1.3, pinned); returns status and body.
///
/// # Panics
/// On connection failure or a response that is not HTTP.
pub async fn https_get(addr: SocketAddr, fingerprint: &str, path: &str) -> (u16, String) {
    try_https_get(addr, fingerprint, path).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// `GET path` over HTTPS (TLS 1.3, pinned), for callers that must go on when the
/// server cannot answer (the load generator reading `/metrics`).
///
/// # Errors
/// When connecting, the handshake or the request fails, or the answer is not HTTP.
pub async fn try_https_get(
    addr: SocketAddr,
    fingerprint: &str,
    path: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = try_tls(addr, fingerprint).await?;
    get(&mut stream, path).await
}

/// `GET path` in plain HTTP (the metrics listener); returns status and body.
///
/// # Panics
/// On connection failure or a response that is not HTTP.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// `GET path` in plain HTTP, for callers that must go on when the server
/// cannot answer (the load generator reading `/metrics`).
///
/// # Errors
/// When connecting or the request fails, or the answer is not HTTP.
pub async fn try_http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    get(&mut stream, path).await
}

async fn get<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    stream: &mut S,
    path: &str,
) -> std::io::Result<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    // A close_notify-less shutdown is fine here: the body is already read.
    stream.read_to_end(&mut raw).await.ok();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status line"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// A protocol client that sends whatever a test asks, valid or not. Events that
/// arrive while it waits for a response are kept, in order, for
/// [`next_frame`](Self::next_frame) and [`next_event`](Self::next_event).
pub struct RawClient {
    ws: WebSocketStream<TlsStream<TcpStream>>,
    next_id: u64,
    /// Frames read while waiting for a response, not yet handed out.
    held: VecDeque<ServerFrame>,
}

impl RawClient {
    /// Connects (TLS 1.3, pinned) and upgrades to the WebSocket. Allows frames up
    /// to four times the protocol limit so tests can send oversized ones.
    ///
    /// # Panics
    /// If connecting fails.
    pub async fn connect(addr: SocketAddr, fingerprint: &str) -> Self {
        Self::try_connect_from(None, addr, fingerprint).await.expect("connect and WebSocket upgrade")
    }

    /// As [`connect`](Self::connect), from the loopback address `source` when
    /// given, reporting a failure (a server refusing the connection) instead of
    /// panicking.
    ///
    /// # Errors
    /// The TCP, TLS or WebSocket error, as text.
    pub async fn try_connect_from(
        source: Option<IpAddr>,
        addr: SocketAddr,
        fingerprint: &str,
    ) -> Result<Self, String> {
        let stream = try_tls_from(source, addr, fingerprint).await.map_err(|e| format!("TLS: {e}"))?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_BYTES * 4))
            .max_frame_size(Some(MAX_FRAME_BYTES * 4));
        let url = format!("wss://localhost:{}{}", addr.port(), conclave_proto::WEBSOCKET_PATH);
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .map_err(|e| format!("WebSocket upgrade: {e}"))?;
        Ok(Self { ws, next_id: 1, held: VecDeque::new() })
    }

    /// Connects and sends `hello`, asserting it succeeds.
    ///
    /// # Panics
    /// If connecting or `hello` fails.
    pub async fn greeted(addr: SocketAddr, fingerprint: &str) -> Self {
        let mut client = Self::connect(addr, fingerprint).await;
        let response = client
            .request(Request::Hello { versions: vec![PROTOCOL_VERSION], client: "conclave-testkit".into() })
            .await;
        assert!(matches!(response.outcome, conclave_proto::Outcome::Ok(_)), "hello failed: {response:?}");
        client
    }

    /// Sends one text message as is.
    ///
    /// # Panics
    /// If the socket is closed.
    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::Text(text.into())).await.expect("send");
    }

    /// Sends one text message, reporting failure instead of panicking (the server
    /// may close the connection while a large message is still being written).
    ///
    /// # Errors
    /// The WebSocket error, as text.
    pub async fn try_send_text(&mut self, text: String) -> Result<(), String> {
        self.ws.send(Message::Text(text.into())).await.map_err(|e| e.to_string())
    }

    /// Sends one WebSocket text frame whose payload is `bytes` as they are,
    /// UTF-8 or not.
    ///
    /// # Panics
    /// If the socket is closed.
    pub async fn send_raw_text(&mut self, bytes: Vec<u8>) {
        use tokio_tungstenite::tungstenite::protocol::frame::{
            Frame,
            coding::{Data, OpCode},
        };
        let frame = Frame::message(bytes, OpCode::Data(Data::Text), true);
        self.ws.send(Message::Frame(frame)).await.expect("send");
    }

    /// Sends one binary message.
    ///
    /// # Panics
    /// If the socket is closed.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.expect("send");
    }

    /// Sends a request and returns its response. Events that arrive first are
    /// kept for [`next_event`](Self::next_event).
    ///
    /// # Panics
    /// If the connection closes or no response arrives within 30 s.
    pub async fn request(&mut self, request: Request) -> Response {
        let id = self.next_id;
        self.try_request(request)
            .await
            .unwrap_or_else(|| panic!("connection closed before the response to request {id}"))
    }

    /// As [`request`](Self::request), but `None` when the connection is (or
    /// gets) closed before the response, as when the server is killed.
    ///
    /// # Panics
    /// If no response arrives within 30 s.
    pub async fn try_request(&mut self, request: Request) -> Option<Response> {
        let id = self.next_id;
        self.next_id += 1;
        self.try_send_text(ClientFrame { id, request }.encode()).await.ok()?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.read_frame())
                .await
                .unwrap_or_else(|_| panic!("no response to request {id} within 30 s"))?;
            match frame {
                ServerFrame::Response(response) if response.id == id => return Some(response),
                other @ ServerFrame::Event { .. } => self.held.push_back(other),
                ServerFrame::Response(_) => {}
            }
        }
    }

    /// Sends a request that must succeed and returns its reply.
    ///
    /// # Panics
    /// If it fails, naming the request and the error.
    #[track_caller]
    pub fn ok(&mut self, request: Request) -> impl Future<Output = Reply> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            let name = request.name();
            match self.request(request).await.outcome {
                Outcome::Ok(reply) => reply,
                Outcome::Error(err) => panic!("{name} failed at {caller}: {err:?}"),
            }
        }
    }

    /// Sends a request that must fail and returns its error code.
    ///
    /// # Panics
    /// If it succeeds.
    #[track_caller]
    pub fn fails(&mut self, request: Request) -> impl Future<Output = ErrorCode> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            let name = request.name();
            match self.request(request).await.outcome {
                Outcome::Ok(reply) => panic!("{name} unexpectedly succeeded at {caller}: {reply:?}"),
                Outcome::Error(err) => err.code,
            }
        }
    }

    /// The next event (held or new). Waits up to 30 s.
    ///
    /// # Panics
    /// On timeout, or if the connection closes or a response arrives instead.
    pub async fn next_event(&mut self) -> Event {
        match self.next_frame().await {
            Some(ServerFrame::Event { event }) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// The next event if one arrives within `wait`; `None` otherwise (or when
    /// the connection closes).
    ///
    /// # Panics
    /// If a response arrives instead.
    pub async fn event_within(&mut self, wait: Duration) -> Option<Event> {
        if let Some(frame) = self.held.pop_front() {
            return Some(event_of(frame));
        }
        let frame = tokio::time::timeout(wait, self.read_frame()).await.ok()??;
        Some(event_of(frame))
    }

    /// The next server frame (held or new), or `None` when the connection
    /// closed. Waits up to 30 s.
    ///
    /// # Panics
    /// On timeout or a frame that does not parse.
    pub async fn next_frame(&mut self) -> Option<ServerFrame> {
        if let Some(frame) = self.held.pop_front() {
            return Some(frame);
        }
        tokio::time::timeout(Duration::from_secs(30), self.read_frame()).await.expect("frame in time")
    }

    /// Reads one frame from the socket, however long it takes.
    async fn read_frame(&mut self) -> Option<ServerFrame> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return Some(
                        ServerFrame::decode(text.as_str(), usize::MAX).expect("server frame parses"),
                    );
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Closes the connection, as a client that goes away does.
    pub async fn close(mut self) {
        self.ws.close(None).await.ok();
    }

    /// Waits for the server to close the connection and returns the close code it
    /// sent, if any.
    ///
    /// # Panics
    /// If the connection stays open for 30 s.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let message =
                tokio::time::timeout(Duration::from_secs(30), self.ws.next()).await.expect("close in time");
            match message {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }
}

fn event_of(frame: ServerFrame) -> Event {
    match frame {
        ServerFrame::Event { event } => event,
        ServerFrame::Response(response) => panic!("expected an event, got the response {response:?}"),
    }
}
