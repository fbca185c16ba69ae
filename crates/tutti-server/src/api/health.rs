//! `/healthz` (the process answers), `/readyz` (the database answers and the broker is
//! connected) and `/metrics` (Prometheus text).

use std::fmt::Write as _;

use async_nats::connection::State as ConnectionState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use jiff::Timestamp;
use tutti_store::{AgentQuery, Liveness, Page};

use crate::api::online_since;
use crate::app::App;
use crate::metrics::PROJECTED_STREAMS;

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The process is alive", body = String)))]
/// Liveness.
pub async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "Store and broker are reachable", body = String), (status = 503, description = "Something is not ready", body = String)))]
/// Readiness: the store answers a query and the broker connection is up.
pub async fn readyz(State(app): State<App>) -> (StatusCode, String) {
    let store = app.store.projector_position(PROJECTED_STREAMS[0]).await;
    let broker = app.bus.client().connection_state();
    match (store, broker) {
        (Ok(_), ConnectionState::Connected) => (StatusCode::OK, "ready\n".into()),
        (Err(err), _) => {
            tracing::warn!(error = %err, "Not ready: the store does not answer.");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable\n".into(),
            )
        }
        (_, state) => (StatusCode::SERVICE_UNAVAILABLE, format!("broker {state}\n")),
    }
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
/// Metrics in the Prometheus text format.
pub async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let mut out = String::new();
    app.metrics.render(&mut out);
    render_positions(&app, &mut out).await;
    render_agents(&app, &mut out).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

async fn render_positions(app: &App, out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP tutti_projector_position Highest stream sequence committed per projected stream."
    );
    let _ = writeln!(out, "# TYPE tutti_projector_position gauge");
    for stream in PROJECTED_STREAMS {
        if let Ok(position) = app.store.projector_position(stream).await {
            let _ = writeln!(
                out,
                "tutti_projector_position{{stream=\"{stream}\"}} {position}"
            );
        }
    }
}

async fn render_agents(app: &App, out: &mut String) {
    let _ = writeln!(out, "# HELP tutti_agents Known agents by liveness.");
    let _ = writeln!(out, "# TYPE tutti_agents gauge");
    for (liveness, name) in [
        (Liveness::Online, "online"),
        (Liveness::Offline, "offline"),
        (Liveness::Never, "never"),
    ] {
        let mut query = AgentQuery::all(online_since(app));
        query.liveness = Some(liveness);
        query.page = Page::first(1);
        if let Ok(page) = app.store.list_agents(&query).await {
            let _ = writeln!(out, "tutti_agents{{liveness=\"{name}\"}} {}", page.total);
        }
    }
    let _ = writeln!(
        out,
        "# HELP tutti_scrape_timestamp_seconds When these metrics were rendered."
    );
    let _ = writeln!(out, "# TYPE tutti_scrape_timestamp_seconds gauge");
    let _ = writeln!(
        out,
        "tutti_scrape_timestamp_seconds {}",
        Timestamp::now().as_second()
    );
}
