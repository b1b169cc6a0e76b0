//! The accept loops. The public one bounds connections with a semaphore and
//! the caps before login ([`crate::admission`]), backs off on accept errors
//! (e.g. out of file descriptors), gives each connection a TLS handshake
//! deadline, and on shutdown stops accepting and drains (mini-redis
//! `Listener`). The metrics one serves `/metrics` in plain HTTP to a few
//! connections at a time.

use crate::{
    ServerError, Shared,
    admission::Ticket,
    http,
    shutdown::{self, Shutdown},
    tls,
};
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// Per-connection context handed to the HTTP layer (and on to a WebSocket
/// session) through request extensions.
#[derive(Clone)]
pub(crate) struct ConnContext {
    /// The peer's address (for per-address rate limits and the audit log).
    pub peer: SocketAddr,
    /// Tells the connection to stop.
    pub shutdown: Shutdown,
    /// Held while the connection lives; the listener waits for all clones to
    /// drop when draining.
    pub _done: mpsc::Sender<()>,
    /// The connection's slot under `max_connections`, released when the last
    /// holder (HTTP connection or WebSocket session) finishes.
    pub _permit: Arc<OwnedSemaphorePermit>,
    /// Its slots under the per-address and unauthenticated caps; the session
    /// marks it authenticated at login.
    pub ticket: Arc<Ticket>,
}

/// Connections the metrics listener serves at once (scrapers, a person with
/// curl); more wait in its accept queue.
const METRICS_CONNECTIONS: usize = 8;

pub(crate) async fn serve(
    listener: TcpListener,
    metrics_listener: TcpListener,
    (tls, renewal): (Arc<rustls::ServerConfig>, (tls::Identity, Arc<tls::Resolver>)),
    shared: Arc<Shared>,
    shutdown_signal: impl Future,
    drain: Duration,
) -> Result<(), ServerError> {
    let (trigger, shutdown) = shutdown::channel();
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let limit = Arc::new(Semaphore::new(shared.config.max_connections));
    let acceptor = TlsAcceptor::from(tls);
    let router = http::router(shared.clone());
    tokio::spawn(purge_limiters(shared.clone(), shutdown.clone()));
    tokio::spawn(tls::keep_fresh(renewal.0, renewal.1, shutdown.clone()));
    tokio::spawn(serve_metrics(metrics_listener, shared.clone(), shutdown.clone(), done_tx.clone()));

    tokio::pin!(shutdown_signal);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = async { (&mut shutdown_signal).await; } => break,
        };
        let (socket, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = async { (&mut shutdown_signal).await; } => break,
        };
        // Refused: closed before the TLS handshake (counted and logged there).
        let Ok(ticket) = shared.admission.admit(peer.ip()) else { continue };
        let context = ConnContext {
            peer,
            shutdown: shutdown.clone(),
            _done: done_tx.clone(),
            _permit: Arc::new(permit),
            ticket: Arc::new(ticket),
        };
        let handshake_timeout = shared.config.handshake_timeout;
        tokio::spawn(connection(socket, context, acceptor.clone(), router.clone(), handshake_timeout));
    }

    tracing::info!("shutting down: closing connections");
    trigger.fire();
    drop(done_tx);
    drop(listener);
    if tokio::time::timeout(drain, done_rx.recv()).await.is_err() {
        tracing::warn!(?drain, "some connections did not close in time");
    }
    Ok(())
}

/// Accepts one connection, retrying with back-off on errors (which are usually
/// temporary: out of file descriptors, a connection reset before accept).
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(err) => {
                tracing::warn!(error = %err, ?backoff, "accept failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// One TCP connection: TLS handshake within the deadline, then HTTP/1.1 (with
/// upgrades) until the peer leaves, the connection upgrades, or shutdown.
async fn connection(
    socket: TcpStream,
    context: ConnContext,
    acceptor: TlsAcceptor,
    router: axum::Router,
    handshake_timeout: Duration,
) {
    let peer = context.peer;
    let mut shutdown = context.shutdown.clone();
    // Small frames matter more than throughput here.
    socket.set_nodelay(true).ok();
    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(socket)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(context.clone());
        router.clone().call(request)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        // Headers of an upgrade request are a few hundred bytes; hyper's floor is 8 KiB.
        .max_buf_size(HTTP_BUFFER_BYTES)
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "HTTP connection ended with an error");
            }
        }
        () = shutdown.recv() => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(Duration::from_secs(1), conn).await.ok();
        }
    }
}

/// Largest HTTP read buffer of a connection before its upgrade.
const HTTP_BUFFER_BYTES: usize = 16 * 1024;

/// Serves `/metrics` in plain HTTP/1.1 on `listener` until shutdown, to at most
/// [`METRICS_CONNECTIONS`] connections at once, each bounded in time as the
/// public port's requests are.
async fn serve_metrics(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: Shutdown,
    done: mpsc::Sender<()>,
) {
    let limit = Arc::new(Semaphore::new(METRICS_CONNECTIONS));
    let router = http::metrics_router(shared.clone());
    let timeout = shared.config.handshake_timeout;
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shutdown.recv() => break,
        };
        let (socket, _) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = shutdown.recv() => break,
        };
        let router = router.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| router.clone().call(request));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .max_buf_size(HTTP_BUFFER_BYTES)
                .serve_connection(TokioIo::new(socket), service);
            // Scrapes are short: a stuck one ends with the header deadline or
            // when the whole connection outlives a few of them.
            tokio::time::timeout(timeout * 3, conn).await.ok();
            drop((permit, done));
        });
    }
}

/// A Welcome the device never acted on is dropped after this long (30 days).
const WELCOME_LIFETIME_SECS: i64 = 30 * 86_400;

/// Periodically forgets idle entries of the rate limiters, day-old
/// login-failure records, expired device cookies and month-old unused
/// Welcomes, so all stay bounded however many addresses and usernames have
/// been tried.
async fn purge_limiters(shared: Arc<Shared>, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                shared.address_limiter.purge();
                shared.registration_limiter.purge();
                shared.claim_limiter.purge();
                shared.claim_pair_limiter.purge();
                shared.signal_limiter.purge();
                shared.quotas.purge();
                let now = crate::clock::now_secs();
                if let Err(err) = shared.store.prune_login_failures(now.saturating_sub(86_400)).await {
                    tracing::warn!(error = %err, "could not prune login failures");
                }
                if let Err(err) = shared.store.prune_device_cookies(now).await {
                    tracing::warn!(error = %err, "could not prune expired device cookies");
                }
                if let Err(err) = shared.store.prune_welcomes(now.saturating_sub(WELCOME_LIFETIME_SECS)).await {
                    tracing::warn!(error = %err, "could not prune old Welcomes");
                }
            }
            () = shutdown.recv() => return,
        }
    }
}
