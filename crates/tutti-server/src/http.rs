//! The one place the HTTP server is assembled: the API's and the dashboard's routes behind
//! the access guard, the body limit, the client address, response counting, a request id
//! and a span per request. Neither `api` nor `web` knows the other; the guard renders a
//! refused page with what the dashboard hands it ([`crate::web::PAGE_REFUSALS`]).

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::app::App;
use crate::error::Error;

/// The whole router, with its state.
pub(crate) fn router(app: App) -> Router {
    let body_limit = app.config.http.body_limit_bytes;
    crate::api::routes(&app)
        .merge(crate::web::router())
        .route_layer(middleware::from_fn_with_state(
            (app.clone(), crate::web::PAGE_REFUSALS),
            crate::auth::guard::guard,
        ))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(app.clone(), client_address))
        .layer(middleware::from_fn_with_state(app.clone(), count_responses))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                )
                .on_failure(()),
        )
        .layer(middleware::from_fn(request_id))
        .with_state(app)
}

/// The header that names a request in the server's log lines and in its answer.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives every request an id: the client's `x-request-id` when it is short and plain (so a
/// proxy's id carries through), a new ULID otherwise. The answer carries it back, and every
/// log line of the request carries it in its `request` span, so `grep request_id=<id>`
/// finds what the server did for one call.
async fn request_id(mut request: Request, next: Next) -> Response {
    let sent = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte))
        })
        .map(str::to_string);
    let id = sent.unwrap_or_else(|| ulid::Ulid::new().to_string().to_ascii_lowercase());
    let value = axum::http::HeaderValue::from_str(&id)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("invalid"));
    request
        .headers_mut()
        .insert(REQUEST_ID_HEADER, value.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, value);
    response
}

/// The span of one request: its id, method and path (never the query, which may hold a
/// token).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

async fn not_found() -> Error {
    Error::NotFound("no such route".into())
}

/// Resolves the client address once per request (trusted proxies applied) for sign-in
/// throttling, enrollment and the audit log.
async fn client_address(State(app): State<App>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let client = crate::actor::ClientAddr::resolve(&parts, &app.config.trusted_proxies());
    parts.extensions.insert(client);
    next.run(Request::from_parts(parts, body)).await
}

async fn count_responses(State(app): State<App>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    app.metrics.count_response(response.status().as_u16());
    response
}
