//! The outermost layer: refuses requests without a valid token before their body is read,
//! caps request bodies and turns every framework error into the JSON error shape, so no
//! caller ever sees a bare text body.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ports::Metrics;

use poem::{
    Body, Endpoint, IntoResponse, Request, Response,
    error::{MethodNotAllowedError, NotFoundError, ReadBodyError},
    http::{Method, StatusCode, header},
};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};

use super::{
    allow::AllowIndex,
    auth::{METRICS_PATH, bearer_of, is_open, token_matches},
    cookie_sessions::{CookieSessions, cookie_of},
    cors::{self, CorsOrigins},
    error::ApiError,
};

/// Settings of the outer layer.
pub struct Outer {
    /// The bearer token every `/api/*` route but the open ones needs.
    pub auth_token: String,
    pub max_body_bytes: usize,
    pub allow: AllowIndex,
    pub cors: CorsOrigins,
    pub cookie_sessions: Arc<CookieSessions>,
    pub metrics: Arc<dyn Metrics>,
    /// `METRICS_PUBLIC`: `/metrics` is served without credentials.
    pub metrics_public: bool,
}

/// The largest sign-in body read from a caller without credentials.
const SIGN_IN_BODY_BYTES: usize = 4096;

/// Runs one request through `ep` with CORS, the credential check, the body cap and error
/// mapping applied.
pub async fn handle<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    outer: Arc<Outer>,
) -> poem::Result<Response> {
    let access = Access::begin(&req, &outer.allow);
    if let Some(preflight) = outer.cors.preflight(&req) {
        return Ok(access.end(preflight, &*outer.metrics));
    }
    // Only an allowed origin is kept: no per-request copy of the headers.
    let origin = outer.cors.allowed_origin(req.headers());
    let openai = req.uri().path().starts_with("/v1/");
    let mut resp = REQUEST
        .scope(access.request_id.clone(), guarded(ep, req, &outer))
        .await?;
    if openai {
        resp = super::openai::reshape(resp).await;
    }
    if let Some(origin) = origin {
        cors::allow(resp.headers_mut(), origin);
    }
    if is_event_stream(&resp) {
        resp = counted_stream(resp, outer.metrics.clone());
    }
    Ok(access.end(resp, &*outer.metrics))
}

fn is_event_stream(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// An event stream counted as open (`event_streams_open`) until its body is dropped: when
/// it ended or the client left.
fn counted_stream(resp: Response, metrics: Arc<dyn Metrics>) -> Response {
    struct Open(Arc<dyn Metrics>);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.event_streams(-1);
        }
    }
    metrics.event_streams(1);
    let open = Open(metrics);
    let (parts, body) = resp.into_parts();
    let frames = body.into_bytes_stream().map(move |frame| {
        let _open = &open;
        frame
    });
    Response::from_parts(parts, Body::from_bytes_stream(frames))
}

/// One access-log line per request: method, route template (no ids, no query, never a
/// token), status, milliseconds to the response head, and a request id (the caller's
/// `X-Request-Id` when it sends a sane one), which the response echoes.
struct Access {
    method: Method,
    route: String,
    request_id: String,
    started: std::time::Instant,
}

impl Access {
    fn begin(req: &Request, allow: &AllowIndex) -> Self {
        let path = req.uri().path();
        let request_id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| {
                !id.is_empty()
                    && id.len() <= 128
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
            })
            .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
        Self {
            method: req.method().clone(),
            route: route_of(path, allow),
            request_id,
            started: std::time::Instant::now(),
        }
    }

    fn end(self, mut resp: Response, metrics: &dyn Metrics) -> Response {
        metrics.http_request(&self.route, resp.status().as_u16());
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "access",
            method = %self.method,
            route = %self.route,
            status = resp.status().as_u16(),
            ms = (ms * 10.0).round() / 10.0,
            request_id = %self.request_id,
            "request"
        );
        if let Ok(value) = header::HeaderValue::from_str(&self.request_id) {
            resp.headers_mut().insert(REQUEST_ID, value);
        }
        resp
    }
}

/// The request id header, read and echoed.
const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    /// The request id of the request this task serves, so a 500's message names the id of
    /// its access-log line.
    static REQUEST: String;
}

/// The id of the request being served (a new one outside a request).
pub fn request_id() -> String {
    REQUEST
        .try_with(Clone::clone)
        .unwrap_or_else(|_| uuid::Uuid::new_v4().simple().to_string())
}

/// A path's route for the log: its documented template, one of the fixed routes outside
/// the document, or `(unmatched)` (an arbitrary path never reaches the log).
fn route_of(path: &str, allow: &AllowIndex) -> String {
    if let Some(template) = allow.template(path) {
        return template;
    }
    if path.starts_with("/assets/") {
        return "/assets/{hash}/{path}".to_owned();
    }
    if path.starts_with("/api/ag-ui/") {
        return "/api/ag-ui/{preset_id}".to_owned();
    }
    match path {
        "/"
        | "/docs"
        | "/api/openapi.json"
        | "/api/openapi.yaml"
        | "/v1/models"
        | "/v1/chat/completions"
        | METRICS_PATH => path.to_owned(),
        _ => "(unmatched)".to_owned(),
    }
}

/// Whether the request carries the token or the cookie of an open session.
fn authenticated(req: &Request, outer: &Outer) -> bool {
    bearer_of(req).is_some_and(|t| token_matches(t, &outer.auth_token))
        || cookie_of(req.headers()).is_some_and(|c| outer.cookie_sessions.is_open(c))
}

async fn guarded<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    outer: &Outer,
) -> poem::Result<Response> {
    let authenticated = authenticated(&req, outer);
    if !authenticated {
        let path = req.uri().path();
        let open = is_open(path) || (outer.metrics_public && path == METRICS_PATH);
        if !open {
            // Before a byte of the body is read: an unauthenticated caller costs no memory.
            return Ok(unauthorized());
        }
        // Open routes take no body but sign-in's (a token, capped small, so a caller
        // without credentials still costs next to no memory); one sent anyway is never read.
        if req.uri().path() != "/api/auth/session" {
            drop(req.take_body());
            return respond(&*ep, req, outer).await;
        }
    }
    let cap = if authenticated {
        outer.max_body_bytes
    } else {
        SIGN_IN_BODY_BYTES
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap as u64) {
        // Drained (bounded) so the client reads the 413 instead of a reset.
        let _ = read_capped(req.take_body(), 0).await;
        return Ok(too_large(cap));
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        // Read the body here, capped, so an oversize chunked body is refused too.
        match read_capped(req.take_body(), cap).await {
            Ok(bytes) => req.set_body(bytes),
            Err(None) => return Ok(too_large(cap)),
            Err(Some(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Ok(request_timeout());
            }
            Err(Some(e)) => {
                return Ok(json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    &e.to_string(),
                ));
            }
        }
    }
    respond(&*ep, req, outer).await
}

async fn respond<E: Endpoint>(ep: &E, req: Request, outer: &Outer) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    match ep.call(req).await {
        Ok(resp) => Ok(resp.into_response()),
        Err(err) => Ok(map_error(err, &path, &outer.allow)),
    }
}

/// 408 for a body that did not arrive within the body read timeout; the connection
/// closes, since the rest of the body may still be on its way.
fn request_timeout() -> Response {
    let mut resp = json_error(
        StatusCode::REQUEST_TIMEOUT,
        super::error::REQUEST_TIMEOUT,
        "the request body did not arrive in time",
    );
    resp.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    resp
}

/// How much of an oversize body is still read (and dropped) before answering 413, and for
/// how long: a client that is still sending when the answer comes and the connection
/// closes sees a reset instead of the 413; draining a bounded amount lets it read the
/// answer.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;
const DRAIN_FOR: Duration = Duration::from_secs(2);

/// The body, if it fits in `cap`. `Err(None)`: too large; `Err(Some(e))`: reading failed.
/// `cap` 0 only drains (bounded), for a body already known to be too large: a client that
/// announced one and sends nothing must not hold the request.
async fn read_capped(body: Body, cap: usize) -> Result<Vec<u8>, Option<std::io::Error>> {
    let mut chunks = body.into_bytes_stream();
    let mut buf = Vec::new();
    let mut over = cap == 0;
    let mut drained = 0usize;
    let deadline = tokio::time::Instant::now() + DRAIN_FOR;
    loop {
        let next = if over {
            match tokio::time::timeout_at(deadline, chunks.next()).await {
                Ok(next) => next,
                Err(_) => break,
            }
        } else {
            chunks.next().await
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(Some)?;
        if over {
            drained += chunk.len();
            if drained > DRAIN_BYTES {
                break;
            }
        } else if buf.len() + chunk.len() > cap {
            over = true;
            buf = Vec::new();
        } else {
            buf.extend_from_slice(&chunk);
        }
    }
    if over { Err(None) } else { Ok(buf) }
}

/// 401 with the challenge header.
pub fn unauthorized() -> Response {
    let mut resp = json_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or invalid bearer token",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

fn too_large(cap: usize) -> Response {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("request body exceeds {cap} bytes"),
    )
}

/// The JSON error response for a status and code.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ApiError::new(code, message);
    let json = serde_json::json!({"error": body.error, "message": body.message});
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(json.to_string())
}

fn map_error(err: poem::Error, path: &str, allow: &AllowIndex) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let message = err.to_string();
    if err.downcast_ref::<ParseRequestPayloadError>().is_some() {
        return json_error(StatusCode::BAD_REQUEST, "invalid_body", &message);
    }
    if err.downcast_ref::<ParseParamError>().is_some()
        || err.downcast_ref::<ParsePathError>().is_some()
    {
        return json_error(StatusCode::BAD_REQUEST, "invalid_parameter", &message);
    }
    if err.downcast_ref::<AuthorizationError>().is_some() {
        return unauthorized();
    }
    if err.downcast_ref::<ContentTypeError>().is_some() {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            &message,
        );
    }
    if err.downcast_ref::<NotFoundError>().is_some() {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no route for {path}"),
        );
    }
    if err.downcast_ref::<MethodNotAllowedError>().is_some() {
        let mut resp = json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed here",
        );
        if let Some(methods) = allow.allowed(path)
            && let Ok(value) = header::HeaderValue::from_str(&methods)
        {
            resp.headers_mut().insert(header::ALLOW, value);
        }
        return resp;
    }
    if let Some(ReadBodyError::PayloadTooLarge) = err.downcast_ref::<ReadBodyError>() {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &message);
    }
    let status = err.status();
    if status.is_server_error() {
        let request_id = request_id();
        tracing::error!(%request_id, error = %message, "request failed");
        return json_error(
            status,
            "internal",
            &format!("internal error (request id {request_id})"),
        );
    }
    let code = match status {
        StatusCode::BAD_REQUEST => "invalid_body",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "invalid_request",
    };
    json_error(status, code, &message)
}
