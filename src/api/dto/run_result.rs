//! The answer of the `…/wait` operations: how a run ended, read off its events, in the
//! shape an IM gateway or a script wants (one JSON body, no event stream to follow).

use poem_openapi::Object;
use ports::{ConversationId, EventEnvelope, EventPayload, MAIN_AGENT, SessionId};

use super::events::{
    Limit, PendingToolCall, RunFailedPayload, RunSummary, SessionStatus, StopReason,
};

/// How a run ended: `status` is `committed`, `awaiting_tool_results` or `failed`;
/// `stop_reason` says why a committed run stopped (absent when it failed), and `limit` which
/// cap stopped it (with `limit_reached`). `run_summary` of a failed run holds its duration and the usage
/// reported before it failed; `error` says why it failed (absent unless `status` is
/// `failed`).
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct RunResult {
    pub session_id: String,
    pub conversation_id: String,
    pub status: SessionStatus,
    pub stop_reason: Option<StopReason>,
    pub limit: Option<Limit>,
    /// The text of the agent's last answer; absent when its last answer had no text.
    pub final_message: Option<String>,
    /// The calls the session waits on (approvals, external results). Omitted when empty.
    #[oai(default, skip_serializing_if_is_empty)]
    pub pending_tool_calls: Vec<PendingToolCall>,
    pub run_summary: RunSummary,
    pub error: Option<RunFailedPayload>,
}

/// What the events of a run say about its end, gathered as they pass.
#[derive(Debug, Default)]
pub struct RunEnding {
    /// The text parts of the main agent's latest answer.
    answer: Vec<String>,
    started: Option<ports::Timestamp>,
    usage: ports::Usage,
    terminal: Option<(ports::Timestamp, EventPayload)>,
}

impl RunEnding {
    pub fn see(&mut self, event: &EventEnvelope) {
        let main = event.agent_id == MAIN_AGENT;
        match &event.payload {
            EventPayload::RunStarted(_) => self.started = Some(event.timestamp),
            EventPayload::MessageStart(_) if main => self.answer.clear(),
            EventPayload::ContentDone(done) if main && done.kind == ports::ContentKind::Text => {
                self.answer.push(done.text.clone());
            }
            EventPayload::UsageSnapshot(snapshot) if main => self.usage = snapshot.usage,
            payload if payload.is_terminal() => {
                self.terminal = Some((event.timestamp, payload.clone()));
            }
            _ => {}
        }
    }

    pub fn result(self, session_id: &SessionId, conversation_id: &ConversationId) -> RunResult {
        let final_message = Some(self.answer.concat()).filter(|text| !text.is_empty());
        let mut result = RunResult {
            session_id: session_id.to_string(),
            conversation_id: conversation_id.to_string(),
            status: SessionStatus::Failed,
            stop_reason: None,
            limit: None,
            final_message,
            pending_tool_calls: Vec::new(),
            run_summary: ports::RunSummary {
                duration_ms: 0,
                usage: self.usage,
                model: None,
            }
            .into(),
            error: None,
        };
        match self.terminal {
            Some((_, EventPayload::RunCompleted(completed))) => {
                result.status = completed.status.into();
                result.stop_reason = Some(completed.stop_reason.into());
                result.limit = completed.limit.map(Into::into);
                result.pending_tool_calls = completed
                    .pending_tool_calls
                    .into_iter()
                    .map(Into::into)
                    .collect();
                result.run_summary = completed.run_summary.into();
            }
            Some((at, EventPayload::RunFailed(failed))) => {
                let elapsed = self.started.map(|started| at - started);
                result.run_summary.duration_ms = elapsed
                    .and_then(|d| u64::try_from(d.num_milliseconds()).ok())
                    .unwrap_or(0);
                result.error = Some(failed.into());
            }
            // The log always ends with a terminal event; without one the run was lost.
            _ => {
                result.error = Some(RunFailedPayload {
                    code: "internal".into(),
                    message: "the run ended without an outcome".into(),
                });
            }
        }
        result
    }
}
