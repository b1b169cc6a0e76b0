//! The HTTP surface. The public port, with the WebSocket: `GET /healthz` (200
//! when storage answers, 503 otherwise) and `GET /ws` (the protocol); anything
//! else is 404. The metrics listener: `GET /metrics` (Prometheus text), kept off
//! the public port because it tells anyone how busy the server is and who
//! logs in when.

use crate::{Shared, listener::ConnContext, session, wire::Wire};
use axum::{
    Extension, Router,
    body::Body,
    extract::{Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::tungstenite::handshake::server::create_response;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(conclave_proto::WEBSOCKET_PATH, get(websocket))
        .with_state(shared)
}

/// The metrics listener's routes.
pub(crate) fn metrics_router(shared: Arc<Shared>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(shared)
}

/// `GET /healthz`
async fn healthz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.store.ping().await {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n")
    }
}

/// `GET /metrics`
async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        shared.metrics.render(),
    )
}

/// `GET /ws`: upgrades to the WebSocket protocol (RFC 6455, checked and
/// answered by tungstenite), then hands the socket, out of hyper and
/// tokio-rustls, to a session. The session and the fan-out share it as a
/// [`Wire`]: pushed frames are written without waking the session's task.
async fn websocket(
    State(shared): State<Arc<Shared>>,
    Extension(context): Extension<ConnContext>,
    request: Request,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return (StatusCode::UPGRADE_REQUIRED, "a WebSocket upgrade over HTTP/1.1 is required\n")
            .into_response();
    };
    let answer = match create_response(&hyper::Request::from_parts(parts, ())) {
        Ok(answer) => answer,
        Err(err) => {
            tracing::debug!(peer = %context.peer, error = %err, "WebSocket upgrade refused");
            return (StatusCode::BAD_REQUEST, format!("not a valid WebSocket upgrade: {err}\n"))
                .into_response();
        }
    };
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(peer = %context.peer, error = %err, "WebSocket upgrade failed");
                return;
            }
        };
        // The listener serves every connection as exactly this type.
        let Ok(hyper::upgrade::Parts { io, read_buf, .. }) =
            upgraded.downcast::<TokioIo<TlsStream<TcpStream>>>()
        else {
            tracing::error!("an upgraded connection is not a TLS socket; closing it");
            return;
        };
        let (socket, tls) = io.into_inner().into_inner();
        let wire = Wire::new(socket, tls);
        let early = read_buf.to_vec();
        // `read_buf` shares hyper's whole read buffer (kilobytes): held across
        // the session, it would stay allocated for the connection's life.
        drop(read_buf);
        session::run(wire, early, context, shared).await;
    });
    let (head, ()) = answer.into_parts();
    Response::from_parts(head, Body::empty())
}
