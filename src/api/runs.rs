//! What the run-starting and event operations share: the sse-or-202 response, the events
//! response, the resume cursor and paging.

use std::time::Duration;

use poem_openapi::{ApiResponse, payload::Json};
use ports::{Page, Transport};

use super::{
    ApiState,
    dto::runs::{InputPart, RunAccepted, SteerAccepted},
    error::{ApiError, ErrorResponse},
    sse::Sse,
};
use crate::core::execution;
use crate::core::execution::{StartedRun, SteerError, Steered};

/// Silence after which an SSE response sends a keep-alive comment (spec 04: ~15 s).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Default page size of list operations.
const DEFAULT_LIMIT: u64 = 20;

/// A started run, as its starter receives it.
#[derive(ApiResponse, Debug)]
pub enum RunResponse {
    /// Transport `sse`: the run's events, ending with exactly one terminal event
    /// (`run_completed` or `run_failed`).
    #[oai(status = 200)]
    Events(Sse),
    /// Transport `stream`: the run started; read its events with `sessions_events`.
    #[oai(status = 202)]
    Accepted(Json<RunAccepted>),
}

/// An attached event stream.
#[derive(ApiResponse, Debug)]
pub enum EventsResponse {
    /// The events after the cursor, then live ones, ending after the terminal event.
    #[oai(status = 200)]
    Events(Sse),
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

/// Starts a run and answers in the transport it asked for.
pub async fn start(
    state: &ApiState,
    request: execution::RunRequest,
) -> Result<RunResponse, ErrorResponse> {
    let started = state.runs.start(request).await?;
    Ok(respond(&started))
}

/// A started run in the transport it asked for.
pub fn respond(started: &StartedRun) -> RunResponse {
    match started.transport {
        Transport::Sse => RunResponse::Events(Sse::new(started.log.subscribe(0), KEEP_ALIVE)),
        Transport::Stream => RunResponse::Accepted(Json(started.into())),
    }
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
