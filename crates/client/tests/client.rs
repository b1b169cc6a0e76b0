//! The client library against a scripted fake server: certificate pinning,
//! first contact, CA verification, and how responses and events are matched.
//!
//! The fake server is a real TLS 1.3 WebSocket server (rustls + tungstenite)
//! whose answers each test scripts, so the client's side of every rule can be
//! provoked exactly. The real server is exercised by the end-to-end tests.

use conclave_client::{Client, ClientError, Fingerprint, Trust};
use conclave_proto::{
    ClientFrame, ErrorCode, Event, PROTOCOL_VERSION, Reply, Request, Response, ServerFrame,
    event::SessionEndReason, limits::MAX_FRAME_BYTES,
};
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

/// What the fake server does in answer to one request.
enum Act {
    /// Send this frame.
    Send(ServerFrame),
    /// Close the WebSocket.
    Close,
}

type Script = dyn Fn(u64, &Request) -> Vec<Act> + Send + Sync;

struct FakeServer {
    addr: SocketAddr,
    fingerprint: Fingerprint,
    /// PEM of the CA that issued the server certificate (for `localhost`).
    ca_pem: String,
    /// Frames the server received after `hello` was answered or not: any
    /// WebSocket message at all counts.
    frames_received: Arc<AtomicUsize>,
    dir: tempfile::TempDir,
}

impl FakeServer {
    /// Starts a server that answers `hello` itself and everything else by `script`.
    async fn start(script: impl Fn(u64, &Request) -> Vec<Act> + Send + Sync + 'static) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert =
            CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
        let der: CertificateDer<'static> = cert.der().clone();
        let fingerprint = Fingerprint::of_public_key(&der).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frames_received = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);

        let counter = frames_received.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, script, counter) = (acceptor.clone(), script.clone(), counter.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake here.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else { return };
                    while let Some(Ok(message)) = ws.next().await {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let Message::Text(text) = message else { continue };
                        let frame = ClientFrame::decode(text.as_str(), MAX_FRAME_BYTES).unwrap();
                        let acts = match &frame.request {
                            Request::Hello { .. } => vec![Act::Send(ServerFrame::Response(Response::ok(
                                frame.id,
                                Reply::Hello {
                                    version: PROTOCOL_VERSION,
                                    server: "fake/0".into(),
                                    max_frame_bytes: MAX_FRAME_BYTES as u64,
                                    registration: conclave_proto::RegistrationMode::Open,
                                },
                            )))],
                            request => script(frame.id, request),
                        };
                        for act in acts {
                            match act {
                                Act::Send(frame) => {
                                    ws.send(Message::Text(frame.encode().into())).await.unwrap()
                                }
                                Act::Close => {
                                    ws.close(None).await.ok();
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });

        let dir = tempfile::tempdir().unwrap();
        Self { addr, fingerprint, ca_pem: ca.pem(), frames_received, dir }
    }

    fn address(&self) -> String {
        self.addr.to_string()
    }

    fn ca_file(&self) -> PathBuf {
        let path = self.dir.path().join("ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

fn reply(id: u64, reply: Reply) -> Act {
    Act::Send(ServerFrame::Response(Response::ok(id, reply)))
}

fn event(event: Event) -> Act {
    Act::Send(ServerFrame::Event { event })
}

fn pong(id: u64, _: &Request) -> Vec<Act> {
    vec![reply(id, Reply::Pong)]
}

const NAME: &str = "conclave-client-tests/0";

/// First contact reports the server's fingerprint and sends it nothing: the
/// handshake is aborted before any WebSocket message could be written.
#[tokio::test]
async fn first_use_learns_the_fingerprint_and_sends_nothing() {
    let server = FakeServer::start(pong).await;
    let err = Client::connect(&server.address(), Trust::FirstUse, NAME).await.unwrap_err();
    match err {
        ClientError::UnknownServer { fingerprint } => assert_eq!(fingerprint, server.fingerprint),
        other => panic!("expected UnknownServer, got {other:?}"),
    }
    assert_eq!(server.frames_received.load(Ordering::SeqCst), 0);
}

/// The pinned certificate is accepted, and `hello` and requests work.
#[tokio::test]
async fn pinned_certificate_connects_and_greets() {
    let server = FakeServer::start(pong).await;
    let mut client =
        Client::connect(&server.address(), Trust::Pinned(server.fingerprint), NAME).await.unwrap();
    assert_eq!(client.server_software(), "fake/0");
    client.ping().await.unwrap();
    client.close().await.unwrap();
}

/// A certificate other than the pinned one is a hard error naming both
/// fingerprints, and nothing is sent.
#[tokio::test]
async fn changed_certificate_is_refused() {
    let server = FakeServer::start(pong).await;
    let pinned = Fingerprint::of_der(b"some other certificate");
    let err = Client::connect(&server.address(), Trust::Pinned(pinned), NAME).await.unwrap_err();
    match err {
        ClientError::CertificateChanged { expected, presented } => {
            assert_eq!(expected, pinned);
            assert_eq!(presented, server.fingerprint);
        }
        other => panic!("expected CertificateChanged, got {other:?}"),
    }
    assert_eq!(server.frames_received.load(Ordering::SeqCst), 0);
}

/// With a CA file the chain and the host name are verified: `localhost` (in the
/// certificate) connects, the bare IP address (not in it) does not.
#[tokio::test]
async fn ca_file_verifies_chain_and_host_name() {
    let server = FakeServer::start(pong).await;
    let trust = Trust::CaFile(server.ca_file());
    let by_name = format!("localhost:{}", server.addr.port());
    let mut client = Client::connect(&by_name, trust.clone(), NAME).await.unwrap();
    client.ping().await.unwrap();

    let err = Client::connect(&server.address(), trust, NAME).await.unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");

    let missing = Trust::CaFile(PathBuf::from("/nonexistent/ca.pem"));
    let err = Client::connect(&by_name, missing, NAME).await.unwrap_err();
    assert!(matches!(err, ClientError::CaFile { .. }), "{err:?}");
}

/// Events that arrive while a request waits are kept in order, and a late
/// answer to an earlier (abandoned) request is skipped rather than taken as
/// the answer.
#[tokio::test]
async fn events_are_kept_and_late_responses_skipped() {
    let server = FakeServer::start(|id, _| {
        vec![reply(id - 1, Reply::Done), event(Event::ServerShutdown), reply(id, Reply::Pong)]
    })
    .await;
    let mut client =
        Client::connect(&server.address(), Trust::Pinned(server.fingerprint), NAME).await.unwrap();
    client.ping().await.unwrap();
    assert_eq!(client.take_events(), vec![Event::ServerShutdown]);
    assert!(client.take_events().is_empty());
}

/// Error replies arrive as typed errors with the server's code and message.
#[tokio::test]
async fn error_replies_are_typed() {
    let server = FakeServer::start(|id, _| {
        vec![Act::Send(ServerFrame::Response(Response::error(id, ErrorCode::SessionInvalid, "gone")))]
    })
    .await;
    let mut client =
        Client::connect(&server.address(), Trust::Pinned(server.fingerprint), NAME).await.unwrap();
    let err = client.whoami().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SessionInvalid));
    assert!(err.is_session_gone());
}

/// A response to a request that was never sent is a protocol error.
#[tokio::test]
async fn response_to_an_unsent_request_is_a_protocol_error() {
    let server = FakeServer::start(|id, _| vec![reply(id + 5, Reply::Pong)]).await;
    let mut client =
        Client::connect(&server.address(), Trust::Pinned(server.fingerprint), NAME).await.unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}

/// When the server ends the session and closes before answering, `logout`
/// still succeeds, and later requests fail with `SessionEnded` instead of a
/// socket error.
#[tokio::test]
async fn session_end_before_the_answer_is_understood() {
    let server = FakeServer::start(|id, request| match request {
        Request::Logout {} => {
            vec![event(Event::SessionEnded { reason: SessionEndReason::LoggedOut }), Act::Close]
        }
        Request::Whoami {} => {
            vec![event(Event::SessionEnded { reason: SessionEndReason::Revoked }), Act::Close]
        }
        _ => pong(id, request),
    })
    .await;
    let mut client =
        Client::connect(&server.address(), Trust::Pinned(server.fingerprint), NAME).await.unwrap();
    client.logout().await.unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(matches!(err, ClientError::SessionEnded { reason: SessionEndReason::LoggedOut }), "{err:?}");

    let mut other =
        Client::connect(&server.address(), Trust::Pinned(server.fingerprint), NAME).await.unwrap();
    let err = other.whoami().await.unwrap_err();
    assert!(matches!(err, ClientError::SessionEnded { reason: SessionEndReason::Revoked }), "{err:?}");
    assert!(err.is_session_gone());
}

/// A server that closes after announcing shutdown is reported as shutting down.
#[tokio::test]
async fn shutdown_announcement_explains_the_close() {
    let server = FakeServer::start(|_, _| vec![event(Event::ServerShutdown), Act::Close]).await;
    let mut client =
        Client::connect(&server.address(), Trust::Pinned(server.fingerprint), NAME).await.unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(matches!(err, ClientError::ServerShutdown), "{err:?}");
}
