//! HTTP: the routes, and the middleware every request passes through (header
//! size limit, request id, tracing span, panic catcher, time-out, body limit).

mod admin;
pub mod auth;
mod dev;
pub mod error;
pub mod extract;
pub mod health;
pub mod jackpots;
mod pages;
mod player;
mod service;
pub mod signed;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use tower::util::{MapRequestLayer, MapResponseLayer};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

use self::error::{ApiError, ErrorCode};
use crate::config::HttpSettings;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: JSON API under `/api`, probes, and the Mini App pages.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(jackpots::router())
        .merge(auth::router())
        .merge(player::router())
        .fallback(api_not_found);
    // What players and browsers reach, limited per client address. The
    // signed service API is not: a provider's server is one address with
    // all its players' traffic, scoped and limited per key instead.
    let mut public = Router::new();
    if state.settings.dev.sign_in_page {
        public = public.merge(dev::router());
    }
    let public = public
        .nest("/api", api)
        .merge(pages::router(&state))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limit_address));
    let routes = Router::new()
        .merge(
            // The jackpot service API: signed requests only.
            service::router()
                .merge(admin::router())
                .route_layer(axum::middleware::from_fn_with_state(state.clone(), signed::verify)),
        )
        .merge(public)
        .layer({
            // At most `in_flight_max` requests served at once, across every
            // route; one more is answered 503 at once (with `Retry-After`),
            // so a flood cannot queue up work nobody will wait for.
            let in_flight_max = state.settings.http.in_flight_max.max(1);
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |_: BoxError| async move {
                    ApiError::new(ErrorCode::ServiceUnavailable, format!(
                        "the server is serving its limit of {in_flight_max} requests at once; retry in a moment"
                    ))
                }))
                .load_shed()
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(in_flight_max))
        })
        // The probes and /metrics stay outside the limits: an instance at
        // its limit is busy, not dead.
        .merge(health::router())
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    with_middleware(routes, &state.settings.http)
}

/// Refuses a client address past `http.ip_requests_per_window`.
async fn limit_address(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let header = state.settings.http.client_ip_header.as_deref();
    if let Some(address) = crate::rates::client_address(request.headers(), header, peer) {
        if let Err(limited) = state.rates.check(crate::rates::Scope::Address, &address.to_string()).await {
            return ApiError::rate_limited("address", limited).into_response();
        }
    }
    next.run(request).await
}

/// The middleware stack, outermost first. Public so tests can put their own
/// routes behind exactly the same stack.
pub fn with_middleware(router: Router, http: &HttpSettings) -> Router {
    let header_bytes_max = http.header_bytes_max;
    let hsts = http.hsts;
    router.layer(
        ServiceBuilder::new()
            .layer(MapResponseLayer::new(move |response| security_headers(hsts, response)))
            .layer(MapRequestLayer::new(drop_odd_request_id))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(request_span).on_response(
                    DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros),
                ),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(axum::middleware::from_fn(move |request: Request<Body>, next: Next| {
                limit_headers(header_bytes_max, request, next)
            }))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(HandleErrorLayer::new(middleware_error))
            .timeout(http.request_timeout())
            .layer(DefaultBodyLimit::max(http.body_limit_bytes)),
    )
}

/// The one rule for request ids: 1 to 128 characters of `[A-Za-z0-9._:-]`.
/// Any other id a client sends is dropped here, before anything logs, echoes
/// or stores it, and the request gets a fresh one (`SetRequestIdLayer`).
pub const REQUEST_ID_LENGTH_MAX: usize = 128;

pub fn is_request_id(id: &[u8]) -> bool {
    (1..=REQUEST_ID_LENGTH_MAX).contains(&id.len())
        && id.iter().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
}

fn drop_odd_request_id<B>(mut request: Request<B>) -> Request<B> {
    if request.headers().get_all(&REQUEST_ID).iter().count() > 1
        || request.headers().get(&REQUEST_ID).is_some_and(|id| !is_request_id(id.as_bytes()))
    {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// Telegram's web clients, which show the Mini App in a frame.
const FRAME_ANCESTORS: &str = "'self' https://web.telegram.org https://*.telegram.org";

/// On every answer: no MIME sniffing, no full URLs in referrers, framing only
/// by Telegram's web clients (and no plugins, no foreign `<base>`), and HSTS
/// when served behind TLS (`http.hsts`).
fn security_headers<B>(hsts: bool, mut response: axum::http::Response<B>) -> axum::http::Response<B> {
    use axum::http::header::{self, HeaderValue};
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    let csp = format!("frame-ancestors {FRAME_ANCESTORS}; object-src 'none'; base-uri 'self'");
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// Refuses a request whose headers (names and values) total more than `max`
/// bytes with `431 headers_too_large`, before any handler reads them.
async fn limit_headers(max: usize, request: Request<Body>, next: Next) -> Response {
    let bytes: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if bytes > max {
        return ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!("the request's headers total {bytes} bytes; at most {max} are accepted"),
        )
        .into_response();
    }
    next.run(request).await
}

fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request.headers().get(&REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        request_id,
    )
}

async fn middleware_error(error: BoxError) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(ErrorCode::RequestTimeout, "the request took too long and was abandoned")
    } else {
        ApiError::internal(anyhow::anyhow!(error))
    }
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a handler panicked".into());
    ApiError::internal(anyhow::anyhow!("panic: {message}")).into_response()
}

async fn api_not_found() -> ApiError {
    ApiError::not_found("no API endpoint at this path")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this method is not allowed on this path")
}
