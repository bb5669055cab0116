//! What the run-starting and event operations share: the three ways a starter receives a
//! run (one operation each, spec 06: `<op>` 202, `<op>/stream` SSE, `<op>/wait` JSON), the
//! events response, the resume cursor and paging.

use std::time::Duration;

use futures::StreamExt;
use poem_openapi::{ApiResponse, payload::Json, types::ToJSON};
use ports::{Page, Transport};
use sha2::{Digest, Sha256};

use super::{
    ApiState,
    dto::run_result::{RunEnding, RunResult},
    dto::runs::{InputPart, RunAccepted, SteerAccepted},
    error::{ApiError, ErrorResponse},
    sse::{EventEncoding, Sse},
};
use crate::core::execution::{
    Attached, Begun, RETRY_AFTER_SECS, RetryKey, RunError, SteerError, Steered,
};

/// Silence after which an SSE response sends a keep-alive comment (spec 04: ~15 s).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Default page size of list operations.
const DEFAULT_LIMIT: u64 = 20;

/// Answer of `<op>`: the run started.
#[derive(ApiResponse, Debug)]
pub enum AcceptedResponse {
    /// The run started; read its events with `sessions_events` (or `conversations_events`).
    #[oai(status = 202)]
    Accepted(Json<RunAccepted>),
    /// `too_many_runs`: `MAX_CONCURRENT_RUNS` runs are going; nothing was started. Retry
    /// after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRuns(Json<ApiError>, #[oai(header = "Retry-After")] u64),
}

/// Answer of `<op>/stream`.
#[derive(ApiResponse, Debug)]
pub enum StreamResponse {
    /// The run's events, ending with exactly one terminal event (`run_completed` or
    /// `run_failed`). A client that loses the stream re-attaches with `sessions_events`
    /// and `Last-Event-ID`; it never re-sends the run.
    #[oai(status = 200)]
    Events(Sse),
    /// A repeat (same `Idempotency-Key`) whose `Last-Event-ID` is the run's terminal
    /// event: nothing more will come.
    #[oai(status = 204)]
    Finished,
    /// `too_many_runs`: `MAX_CONCURRENT_RUNS` runs are going; nothing was started. Retry
    /// after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRuns(Json<ApiError>, #[oai(header = "Retry-After")] u64),
}

/// Answer of `<op>/wait`.
#[derive(ApiResponse, Debug)]
pub enum WaitResponse {
    /// How the run ended. The run goes on if the client leaves before.
    #[oai(status = 200)]
    Finished(Json<RunResult>),
    /// `too_many_runs`: `MAX_CONCURRENT_RUNS` runs are going; nothing was started. Retry
    /// after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRuns(Json<ApiError>, #[oai(header = "Retry-After")] u64),
}

/// A run refused at the admission cap as its operation's 429 body; any other refusal as
/// the shared error statuses.
#[expect(
    clippy::result_large_err,
    reason = "the handlers' own return type: poem-openapi takes the error by value"
)]
pub fn refused(e: RunError) -> Result<(Json<ApiError>, u64), ErrorResponse> {
    match e {
        RunError::TooManyRuns { .. } => Ok((
            Json(ApiError::new("too_many_runs", e.to_string())),
            RETRY_AFTER_SECS,
        )),
        other => Err(other.into()),
    }
}

/// How the operation hands the run to its starter, as the domain's transport: the 202
/// operation leaves the events to the event bus; the stream and wait operations read them
/// from the run itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Accepted,
    Stream,
    Wait,
}

impl Delivery {
    pub fn transport(self) -> Transport {
        match self {
            Self::Accepted => Transport::Stream,
            Self::Stream | Self::Wait => Transport::Sse,
        }
    }
}

/// An attached event stream.
#[derive(ApiResponse, Debug)]
pub enum EventsResponse {
    /// The events after the cursor, then live ones, ending after the terminal event.
    #[oai(status = 200)]
    Events(Sse),
    /// The cursor (`Last-Event-ID`) is the run's terminal event: nothing more will come,
    /// and a browser's `EventSource` stops reconnecting.
    #[oai(status = 204)]
    Finished,
}

impl EventsResponse {
    /// The attached events in `encoding`.
    pub fn of(attached: Attached, encoding: Option<EventEncoding>) -> Self {
        match attached {
            Attached::Events(events) => {
                Self::Events(Sse::new(events, KEEP_ALIVE).encoded(encoding))
            }
            Attached::Finished => Self::Finished,
        }
    }
}

/// Answers of the steer operations.
#[derive(ApiResponse, Debug)]
pub enum SteerResponse {
    /// Queued (or, for a repeated `message_id`, already queued before).
    #[oai(status = 200)]
    Accepted(Json<SteerAccepted>),
    /// `too_many_steers`: 32 steering messages already wait for the session's next step
    /// boundary; retry once the run has taken them.
    #[oai(status = 429)]
    TooManySteers(Json<ApiError>),
}

/// A steer's outcome as the API answers it.
#[expect(
    clippy::result_large_err,
    reason = "the handlers' own return type: poem-openapi takes the error by value"
)]
pub fn steer_response(result: Result<Steered, SteerError>) -> Result<SteerResponse, ErrorResponse> {
    match result {
        Ok(steered) => Ok(SteerResponse::Accepted(Json(steered.into()))),
        Err(SteerError::TooMany(message)) => Ok(SteerResponse::TooManySteers(Json(ApiError::new(
            "too_many_steers",
            message,
        )))),
        Err(SteerError::Control(e)) => Err(e.into()),
    }
}

/// The retry key of a run request: the `Idempotency-Key` header with a fingerprint of what
/// the request asks for (its operation, target and body), so a repeat of the same request
/// is told from another request with the same key.
pub fn retry_key(
    header: Option<String>,
    operation: &str,
    target: &str,
    body: &impl ToJSON,
) -> Option<RetryKey> {
    let key = header?;
    let body = body
        .to_json()
        .map(|json| json.to_string())
        .unwrap_or_default();
    let mut hash = Sha256::new();
    for part in [operation, target, body.as_str()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    Some(RetryKey {
        key,
        fingerprint: format!("{:x}", hash.finalize()),
    })
}

/// `<op>`: the run's ids.
pub fn accepted(begun: &Begun) -> AcceptedResponse {
    AcceptedResponse::Accepted(Json(RunAccepted::of(begun)))
}

/// `<op>/stream`: the run's events; for a repeat, from after `cursor`.
pub async fn stream(
    state: &ApiState,
    begun: Begun,
    cursor: u64,
    encoding: Option<EventEncoding>,
) -> Result<StreamResponse, ErrorResponse> {
    let events = match begun {
        Begun::Started(run) => run.log.subscribe(0),
        Begun::Repeat { session_id, .. } => {
            match state.live.attach_session(&session_id, cursor).await? {
                Attached::Events(events) => events,
                Attached::Finished => return Ok(StreamResponse::Finished),
            }
        }
    };
    Ok(StreamResponse::Events(
        Sse::new(events, KEEP_ALIVE).encoded(encoding),
    ))
}

/// `<op>/wait`: the run's outcome, once it has one.
pub async fn wait(state: &ApiState, begun: Begun) -> Result<WaitResponse, ErrorResponse> {
    let mut events = match &begun {
        Begun::Started(run) => run.log.subscribe(0),
        Begun::Repeat { session_id, .. } => match state.live.attach_session(session_id, 0).await? {
            Attached::Events(events) => events,
            Attached::Finished => futures::stream::empty().boxed(),
        },
    };
    let mut ending = RunEnding::default();
    while let Some(event) = events.next().await {
        ending.see(&event);
    }
    Ok(WaitResponse::Finished(Json(
        ending.result(begun.session_id(), begun.conversation_id()),
    )))
}

/// The domain input parts (absent input is empty input, which validation refuses).
pub fn input_of(parts: Option<Vec<InputPart>>) -> Vec<ports::InputPart> {
    parts
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect()
}

/// The resume cursor: the `Last-Event-ID` header wins over the `last_event_id` query
/// parameter (for browsers, whose EventSource cannot set headers on the first connect).
pub fn cursor(header: Option<u64>, query: Option<u64>) -> u64 {
    header.or(query).unwrap_or(0)
}

/// A clamped page: `limit` 1..=100 (default 20), any offset.
pub fn page(limit: Option<u64>, offset: Option<u64>) -> Page {
    let limit = u32::try_from(limit.unwrap_or(DEFAULT_LIMIT)).unwrap_or(u32::MAX);
    let offset = u32::try_from(offset.unwrap_or(0)).unwrap_or(u32::MAX);
    Page::clamped(limit, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_wins_and_pages_are_clamped() {
        assert_eq!(cursor(Some(4), Some(9)), 4);
        assert_eq!(cursor(None, Some(9)), 9);
        assert_eq!(cursor(None, None), 0);
        assert_eq!(
            page(None, None),
            Page {
                limit: 20,
                offset: 0
            }
        );
        assert_eq!(
            page(Some(5_000), Some(9_007_199_254_740_991)),
            Page {
                limit: 100,
                offset: u32::MAX
            }
        );
        assert_eq!(
            page(Some(0), Some(3)),
            Page {
                limit: 1,
                offset: 3
            }
        );
    }
}
