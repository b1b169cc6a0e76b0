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
        .write_buffer_size(0)
        .max_write_buffer_size(limit.saturating_mul(4))
        .on_upgrade(move |socket| session::run(socket, context, shared))
}
