//! Finalize, the last phase of every run (spec 01 and 03), also after an interrupt, a
//! provider failure or a panic: write the events' transcript (display_messages), write the
//! snapshot, set the final status, leave the registry, and only then emit the terminal
//! event, so a client that continues as soon as it sees it is never told 409.

use std::sync::Arc;
use std::time::Duration;

use ports::SessionId;
use ports::{
    DisplayMessage, EventEnvelope, EventPayload, Limit, MAIN_AGENT, MailboxMessage, MailboxSource,
    PendingToolCall, RunCompleted, RunFailed, RunSummary, SessionOutcome, SessionRecord,
    SessionStatus, StopReason, StorageError, Usage, now,
};
use tokio::task::JoinError;
use tokio::time::Instant;

use super::engine::RunEngine;
use super::notices;
use super::registry::RunHandle;
use super::transcript;
use crate::core::agent::{RunEnd, RunOutcome};

/// What a run's end means for its session.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    Commit {
        stop_reason: StopReason,
        message: Option<String>,
        /// The cap reached, for `limit_reached`.
        limit: Option<Limit>,
        /// Deferred calls: the session waits for their results.
        pending: Vec<PendingToolCall>,
    },
    Fail {
        code: String,
        message: String,
    },
}

/// Decides the session's fate from how the loop ended and whether it produced anything a
/// caller could use (an interrupt before any output leaves nothing worth a snapshot).
pub(super) fn verdict(end: &RunEnd, produced: bool) -> Verdict {
    match end {
        RunEnd::Completed => Verdict::Commit {
            stop_reason: StopReason::Completed,
            message: None,
            limit: None,
            pending: Vec::new(),
        },
        RunEnd::AwaitingToolResults { pending } => Verdict::Commit {
            stop_reason: StopReason::AwaitingToolResults,
            message: None,
            limit: None,
            pending: pending.clone(),
        },
        RunEnd::LimitReached { limit, message } => Verdict::Commit {
            stop_reason: StopReason::LimitReached,
            message: Some(message.clone()),
            limit: Some(*limit),
            pending: Vec::new(),
        },
        RunEnd::Interrupted { reason } if produced => Verdict::Commit {
            stop_reason: StopReason::Interrupted,
            message: reason.clone(),
            limit: None,
            pending: Vec::new(),
        },
        RunEnd::Interrupted { reason } => Verdict::Fail {
            code: "interrupted".to_owned(),
            message: match reason {
                Some(r) => format!("interrupted before the agent produced anything: {r}"),
                None => "interrupted before the agent produced anything".to_owned(),
            },
        },
        RunEnd::Failed { code, message } => Verdict::Fail {
            code: (*code).to_owned(),
            message: message.clone(),
        },
    }
}

impl Verdict {
    /// A failure's message can quote the provider's answer, which may echo the key it was
    /// sent: no secret of the service reaches `run_failed` or the session row.
    fn redacted(self, redactor: &crate::core::redact::Redactor) -> Self {
        match self {
            Self::Fail { code, message } => Self::Fail {
                code,
                message: redactor.redact(message),
            },
            commit @ Self::Commit { .. } => commit,
        }
    }

    /// The failure's code and message, for the transcript's closing error.
    fn failure(&self) -> Option<(&str, &str)> {
        match self {
            Self::Fail { code, message } => Some((code, message)),
            Self::Commit { .. } => None,
        }
    }
}

/// The verdict on a finished (or panicked) agent task, and its outcome when it returned one.
fn judge(
    session_id: &SessionId,
    result: Result<RunOutcome, JoinError>,
    events: &[Arc<EventEnvelope>],
) -> (Verdict, Option<RunOutcome>) {
    match result {
        Ok(outcome) => (
            verdict(&outcome.end, produced_anything(events)),
            Some(outcome),
        ),
        Err(e) => {
            tracing::error!(%session_id, error = %e, "the agent task failed");
            let verdict = Verdict::Fail {
                code: "internal".to_owned(),
                message: "the run stopped unexpectedly; see the service log".to_owned(),
            };
            (verdict, None)
        }
    }
}

/// Whether the run streamed content or completed a tool call.
fn produced_anything(events: &[Arc<EventEnvelope>]) -> bool {
    events.iter().any(|e| {
        matches!(
            e.payload,
            EventPayload::ContentDelta(_) | EventPayload::ToolCallResult(_)
        )
    })
}

/// How the session ends: its row's final fields and its terminal event.
struct Ending {
    status: SessionStatus,
    error: Option<String>,
    pending: Vec<PendingToolCall>,
    terminal: EventPayload,
}

impl Ending {
    fn of(verdict: Verdict, summary: RunSummary) -> Self {
        match verdict {
            Verdict::Commit {
                stop_reason,
                message,
                limit,
                pending,
            } => {
                let status = if pending.is_empty() {
                    SessionStatus::Committed
                } else {
                    SessionStatus::AwaitingToolResults
                };
                Self {
                    status,
                    error: None,
                    pending: pending.clone(),
                    terminal: EventPayload::RunCompleted(RunCompleted {
                        status,
                        stop_reason,
                        message,
                        limit,
                        run_summary: summary,
                        pending_tool_calls: pending,
                    }),
                }
            }
            Verdict::Fail { code, message } => Self {
                status: SessionStatus::Failed,
                error: Some(format!("{code}: {message}")),
                pending: Vec::new(),
                terminal: EventPayload::RunFailed(RunFailed { code, message }),
            },
        }
    }
}

/// What the transcript is made of: the user's text and the run's events.
struct Transcript<'a> {
    user_text: &'a str,
    events: &'a [Arc<EventEnvelope>],
}

impl Transcript<'_> {
    fn display_messages(&self, verdict: &Verdict) -> Vec<DisplayMessage> {
        transcript::display_messages(
            Some(self.user_text),
            self.events.iter().map(|e| &**e),
            verdict.failure(),
        )
    }
}

/// A run's preset, as its metrics label it.
pub(super) fn preset_label(record: &SessionRecord) -> &str {
    record.preset_id.as_ref().map_or("", |p| p.as_str())
}

impl RunEngine {
    pub(super) async fn finalize(
        &self,
        handle: &RunHandle,
        record: &SessionRecord,
        result: Result<RunOutcome, JoinError>,
        user_text: &str,
        started: Instant,
    ) {
        let session_id = &record.session_id;
        let events = handle.log.snapshot();
        let (verdict, outcome) = judge(session_id, result, &events);
        let verdict = verdict.redacted(&self.settings.redactor);
        let summary = RunSummary {
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            usage: outcome.as_ref().map(|o| o.usage).unwrap_or_default(),
            model: outcome.as_ref().and_then(|o| o.model.clone()),
        };
        let transcript = Transcript {
            user_text,
            events: &events,
        };
        let verdict = self
            .store_snapshot(session_id, verdict, outcome.as_ref(), &transcript)
            .await;
        let ending = Ending::of(verdict, summary.clone());
        self.finish_row(
            session_id,
            &SessionOutcome {
                status: ending.status,
                run_summary: Some(summary.clone()),
                pending_tool_calls: ending.pending,
                error: ending.error,
                finished_at: now(),
            },
        )
        .await;
        if let Some(name) = record.kind.subagent_name() {
            // Before the terminal event: whoever fires on seeing it finds the message.
            self.post_outcome(record, name, ending.status).await;
        }
        // Counted and told before the terminal event: whoever reads metrics or
        // notifications on seeing it finds the run there.
        for note in notices::finished(record, ending.status) {
            self.ports.notifier.publish(note);
        }
        self.ports.metrics.run_finished(
            preset_label(record),
            record.session_type(),
            ending.status,
            started.elapsed(),
        );
        self.registry.finish(session_id);
        handle.log.push(MAIN_AGENT, ending.terminal);
        log_end(session_id, ending.status, &summary.usage);
        self.title_first_exchange(record, ending.status, user_text, &events);
    }

    /// Writes the snapshot before the status: a session only counts as committed once its
    /// state is stored. Both documents are written at once; the transcript is rewritten
    /// only in the rare case the state write fails and the run turns into a failure, which
    /// is the verdict returned then.
    async fn store_snapshot(
        &self,
        session_id: &SessionId,
        verdict: Verdict,
        outcome: Option<&RunOutcome>,
        transcript: &Transcript<'_>,
    ) -> Verdict {
        let store = &self.ports.state_store;
        let display = transcript.display_messages(&verdict);
        let (verdict, display_saved) = match (&verdict, outcome) {
            (Verdict::Commit { .. }, Some(outcome)) => {
                let (state_saved, display_saved) = tokio::join!(
                    store.save_state(session_id, &outcome.state),
                    store.save_display_messages(session_id, &display),
                );
                match state_saved {
                    Ok(()) => (verdict, display_saved),
                    Err(e) => {
                        tracing::error!(%session_id, error = %e, "writing the session state failed");
                        let failed = Verdict::Fail {
                            code: "state_write_failed".to_owned(),
                            message: format!("the session state could not be stored: {e}"),
                        };
                        let display = transcript.display_messages(&failed);
                        let saved = store.save_display_messages(session_id, &display).await;
                        (failed, saved)
                    }
                }
            }
            _ => {
                let saved = store.save_display_messages(session_id, &display).await;
                (verdict, saved)
            }
        };
        if let Err(e) = display_saved {
            tracing::warn!(%session_id, error = %e, "writing display_messages failed");
        }
        verdict
    }

    /// Sets the final status (retried, see [`Self::write_final`]); a row left `created`
    /// after that is failed by startup recovery.
    async fn finish_row(&self, session_id: &SessionId, outcome: &SessionOutcome) {
        self.write_final(session_id, "finishing the session", || {
            self.ports.sessions.finish_session(session_id, outcome)
        })
        .await;
    }

    /// Runs one of finalize's database writes, retrying with backoff while the database is
    /// unreachable, for up to `finish_retry_for`; a write that still fails is logged.
    async fn write_final<F, Fut>(&self, session_id: &SessionId, what: &str, write: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), StorageError>>,
    {
        let deadline = Instant::now() + self.settings.finish_retry_for;
        let mut backoff = Duration::from_millis(200);
        loop {
            match write().await {
                Ok(()) => return,
                Err(StorageError::Unavailable(e)) if Instant::now() < deadline => {
                    tracing::warn!(%session_id, error = %e, "{what} failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(%session_id, error = %e, "{what} failed");
                    return;
                }
            }
        }
    }
}

impl RunEngine {
    /// Posts an async subagent's outcome to its conversation's mailbox: a result when it
    /// committed (or waits for tool results), a failure otherwise. Retried like the
    /// session's final write; a message that still cannot be stored is logged.
    async fn post_outcome(&self, record: &SessionRecord, name: &str, status: SessionStatus) {
        let message = MailboxMessage {
            message_id: uuid::Uuid::now_v7().to_string(),
            conversation_id: record.conversation_id.clone(),
            source_session_id: record.session_id.clone(),
            source_type: if status == SessionStatus::Failed {
                MailboxSource::SubagentFailed
            } else {
                MailboxSource::SubagentResult
            },
            subagent_name: name.to_owned(),
            created_at: now(),
            delivered_to: None,
        };
        self.write_final(
            &record.session_id,
            "posting the subagent's outcome to the mailbox",
            || self.ports.mailbox.post_message(&message),
        )
        .await;
        self.ports.notifier.publish(notices::mailbox(record, name));
    }
}

fn log_end(session_id: &SessionId, status: SessionStatus, usage: &Usage) {
    tracing::info!(
        %session_id,
        status = status.as_str(),
        tokens = usage.total_tokens,
        model_requests = usage.model_requests,
        "run finished"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::agent::Limit;

    #[test]
    fn interrupts_commit_only_what_was_produced_and_failures_keep_their_code() {
        let interrupted = RunEnd::Interrupted {
            reason: Some("user".into()),
        };
        assert_eq!(
            verdict(&interrupted, true),
            Verdict::Commit {
                stop_reason: StopReason::Interrupted,
                message: Some("user".into()),
                limit: None,
                pending: vec![],
            }
        );
        assert!(
            matches!(verdict(&interrupted, false), Verdict::Fail { code, .. } if code == "interrupted")
        );
        assert!(matches!(
            verdict(
                &RunEnd::LimitReached {
                    limit: Limit::MaxModelRequests,
                    message: "50".into()
                },
                false
            ),
            Verdict::Commit {
                stop_reason: StopReason::LimitReached,
                limit: Some(Limit::MaxModelRequests),
                ..
            }
        ));
        assert!(matches!(
            verdict(&RunEnd::Failed { code: "model_auth", message: "bad key".into() }, true),
            Verdict::Fail { code, message } if code == "model_auth" && message == "bad key"
        ));
        assert!(matches!(
            verdict(&RunEnd::Completed, false),
            Verdict::Commit {
                stop_reason: StopReason::Completed,
                message: None,
                limit: None,
                pending
            } if pending.is_empty()
        ));
    }
}
