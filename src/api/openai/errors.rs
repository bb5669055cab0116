//! Errors of the `/v1` surface in OpenAI's shape. The edge (401, 413, unknown routes)
//! answers in the service's own shape first; [`reshape`] rewrites those answers for `/v1`
//! callers, so an OpenAI SDK reads every error it gets.

use poem::http::{StatusCode, header};
use poem::{IntoResponse, Response};
use serde_json::Value;

use super::wire::error_body;

/// Bodies larger than this are not errors of ours: left as they are.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub fn respond(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    (status, poem::web::Json(error_body(message, kind, code))).into_response()
}

pub fn invalid(message: &str) -> Response {
    respond(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        "invalid_request",
    )
}

/// 429 at the admission cap, with the `Retry-After` the OpenAI SDKs honour when they retry.
pub fn too_many_runs(message: &str) -> Response {
    let mut resp = respond(
        StatusCode::TOO_MANY_REQUESTS,
        message,
        "rate_limit_error",
        "too_many_runs",
    );
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(crate::core::execution::RETRY_AFTER_SECS),
    );
    resp
}

/// OpenAI's error type for a status.
fn kind_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    }
}

/// `resp` with an error body of the service's shape (`{"error": code, "message": …}`)
/// rewritten to OpenAI's; anything else unchanged.
pub async fn reshape(resp: Response) -> Response {
    let status = resp.status();
    if status.as_u16() < 400 {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = body.into_bytes_limit(MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, poem::Body::empty());
    };
    let ours = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
        let code = v.get("error")?.as_str()?.to_owned();
        let message = v.get("message")?.as_str()?.to_owned();
        Some((code, message))
    });
    let Some((code, message)) = ours else {
        return Response::from_parts(parts, bytes.into());
    };
    let mut resp = Response::from_parts(
        parts,
        error_body(&message, kind_of(status), &code)
            .to_string()
            .into(),
    );
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    resp
}
