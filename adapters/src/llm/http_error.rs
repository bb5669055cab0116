//! Provider failures → `ModelError`, in one place so both protocols classify alike: the
//! retry policy only sees the variant, so the classification is the contract.

use std::error::Error as StdError;
use std::time::Duration;

use ports::ModelError;
use serde_json::Value;

/// Longest provider error text kept when the body is not the usual JSON.
const MAX_RAW_MESSAGE: usize = 500;

/// `e` and its sources, `: `-separated (reqwest's own message alone rarely says why).
pub(crate) fn describe(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// A request that failed before any response: a bad URL is a configuration error (not
/// worth retrying); anything else is the network's.
pub(crate) fn send_error(e: &reqwest::Error) -> ModelError {
    if e.is_builder() {
        ModelError::InvalidRequest {
            status: 0,
            message: describe(e),
        }
    } else {
        ModelError::Network(describe(e))
    }
}

/// The error a non-2xx response stands for. The body is read for the provider's message,
/// bounded by `idle` so a server that sends headers and then stalls cannot hang us.
pub(crate) async fn from_response(response: reqwest::Response, idle: Duration) -> ModelError {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = match tokio::time::timeout(idle, response.text()).await {
        Ok(Ok(text)) => text,
        Ok(Err(_)) | Err(_) => String::new(),
    };
    let (kind, message) = provider_message(&body);
    let message = message.unwrap_or_else(|| {
        let reason = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error");
        format!("HTTP {status} {reason}")
    });
    classify(status, kind.as_deref(), message, retry_after)
}

/// `error.type`/`error.code` and `error.message` of an OpenAI or Anthropic error body, or
/// the raw text when it is something else.
pub(crate) fn provider_message(body: &str) -> (Option<String>, Option<String>) {
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        let raw = body.trim();
        return (
            None,
            (!raw.is_empty()).then(|| raw.chars().take(MAX_RAW_MESSAGE).collect()),
        );
    };
    error_fields(json.get("error").unwrap_or(&json))
}

/// Type (or code) and message of an `error` object; a bare string is the message.
pub(crate) fn error_fields(error: &Value) -> (Option<String>, Option<String>) {
    let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
    let message = text("message").or_else(|| error.as_str().map(str::to_owned));
    // OpenAI puts the precise reason in `code` (e.g. context_length_exceeded).
    let kind = text("code").or_else(|| text("type"));
    (kind, message)
}

/// The variant for an HTTP status; `kind` is the provider's error type or code.
pub(crate) fn classify(
    status: u16,
    kind: Option<&str>,
    message: String,
    retry_after: Option<Duration>,
) -> ModelError {
    match status {
        429 => ModelError::RateLimited {
            retry_after,
            message: format!("HTTP {status}: {message}"),
        },
        401 | 403 => ModelError::Auth(format!("HTTP {status}: {message}")),
        400..=499 if is_context_overflow(kind, &message) => {
            ModelError::ContextTooLong(format!("HTTP {status}: {message}"))
        }
        400..=499 => ModelError::InvalidRequest { status, message },
        _ => ModelError::Server { status, message },
    }
}

/// An error reported inside a 200 stream (Anthropic's `error` event, an OpenAI-compatible
/// `{"error": …}` chunk), classified by its type as the matching HTTP status would be.
pub(crate) fn in_stream(kind: Option<&str>, message: String) -> ModelError {
    let status = match kind.unwrap_or("") {
        "rate_limit_error" | "rate_limit_exceeded" | "requests" | "tokens" => 429,
        "overloaded_error" => 529,
        "authentication_error" | "invalid_api_key" => 401,
        "permission_error" => 403,
        "invalid_request_error" | "context_length_exceeded" => 400,
        "request_too_large" => 413,
        _ => 500,
    };
    classify(status, kind, message, None)
}

/// Providers word this differently; these cover OpenAI, Anthropic, vLLM and llama.cpp.
fn is_context_overflow(kind: Option<&str>, message: &str) -> bool {
    if kind == Some("context_length_exceeded") {
        return true;
    }
    let m = message.to_ascii_lowercase();
    [
        "context length",
        "context_length",
        "context window",
        "maximum context",
        "prompt is too long",
        "too many tokens",
        "exceeds the available context",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// `Retry-After` in seconds (OpenAI also sends `retry-after-ms`, used when present since
/// it is more precise). HTTP-date values are ignored: providers send seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    header("retry-after")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        let m = || "m".to_owned();
        assert!(matches!(
            classify(401, None, m(), None),
            ModelError::Auth(_)
        ));
        assert!(matches!(
            classify(529, None, m(), None),
            ModelError::Server { status: 529, .. }
        ));
        assert!(matches!(
            classify(400, Some("context_length_exceeded"), m(), None),
            ModelError::ContextTooLong(_)
        ));
        assert!(matches!(
            classify(400, None, "prompt is too long: 300000 tokens".into(), None),
            ModelError::ContextTooLong(_)
        ));
        assert!(matches!(
            classify(404, None, m(), None),
            ModelError::InvalidRequest { status: 404, .. }
        ));
        assert!(matches!(
            in_stream(Some("overloaded_error"), m()),
            ModelError::Server { status: 529, .. }
        ));
    }

    #[test]
    fn reads_both_error_shapes() {
        let openai = r#"{"error":{"message":"bad","type":"invalid_request_error","code":null}}"#;
        assert_eq!(
            provider_message(openai),
            (Some("invalid_request_error".into()), Some("bad".into()))
        );
        let anthropic = r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#;
        assert_eq!(
            provider_message(anthropic),
            (Some("overloaded_error".into()), Some("busy".into()))
        );
        assert_eq!(provider_message("  oops "), (None, Some("oops".into())));
        assert_eq!(provider_message(""), (None, None));
    }
}
