//! The HTTP surface, one port with the WebSocket: `GET /healthz` (200 when
//! storage answers, 503 otherwise), `GET /metrics` (Prometheus text) and
//! `GET /ws` (the protocol).

use crate::{Shared, listener::ConnContext, session};
use axum::{
    Extension, Router,
    extract::{State, WebSocketUpgrade},
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use std::sync::Arc;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(conclave_proto::WEBSOCKET_PATH, get(websocket))
        .with_state(shared)
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

/// Initial WebSocket read buffer per connection.
const READ_BUFFER_BYTES: usize = 4096;
/// Frames gathered before a write: one TLS record's worth.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// `GET /ws`: upgrades to the WebSocket protocol with the configured frame and
/// message limit (tungstenite's own default would be 64 MiB).
async fn websocket(
    State(shared): State<Arc<Shared>>,
    Extension(context): Extension<ConnContext>,
    upgrade: WebSocketUpgrade,
) -> impl IntoResponse {
    let limit = shared.config.max_frame_bytes;
    upgrade
        .max_frame_size(limit)
        .max_message_size(limit)
        // Small buffers: memory per idle connection is what bounds how many a
        // node holds. Reads grow the buffer for a large message as needed;
        // writes gather a burst of frames (see `Connection::write_encoded`) up
        // to one TLS record before they go out.
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        // A server frame may be far larger than a client's (a large group's
        // ratchet tree), up to the clients' limit.
        .max_write_buffer_size(conclave_proto::limits::MAX_SERVER_FRAME_BYTES + 2 * WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| session::run(socket, context, shared))
}
