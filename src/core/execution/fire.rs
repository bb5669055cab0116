//! Fire (spec 05): deliver the async subagents' outcomes waiting in a conversation's
//! mailbox to its agent, as one continuation run. The drain marks the messages delivered to
//! the new session in one atomic step, so concurrent fires never deliver a message twice;
//! when the continuation cannot start, they are returned to pending.

use std::fmt::Write as _;
use std::sync::Arc;

use ports::{DisplayMessage, MAIN_AGENT, MailboxMessage, MailboxSource, SessionId, SessionStatus};

use super::engine::RunEngine;
use super::request::{ActiveSession, RunError, RunRequest, RunTarget, StartedRun};
use crate::core::tools::truncate_chars;

/// Longest answer of one subagent put into the continuation's message.
const MAX_ANSWER_CHARS: usize = 20_000;

/// What one mailbox message reports, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outcome {
    pub name: String,
    pub session_id: SessionId,
    pub state: OutcomeState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OutcomeState {
    Completed {
        answer: String,
    },
    /// It stopped on calls that wait for a human or a caller (listed).
    Waiting {
        calls: String,
    },
    Failed {
        error: String,
    },
}

impl OutcomeState {
    fn label(&self) -> &'static str {
        match self {
            Self::Completed { .. } => "completed",
            Self::Waiting { .. } => "waiting for tool results",
            Self::Failed { .. } => "failed",
        }
    }
}

/// The continuation's opening text: one outcome as a short paragraph, several as one
/// section per subagent with its status.
pub(super) fn render(outcomes: &[Outcome]) -> String {
    let body = |o: &Outcome| match &o.state {
        OutcomeState::Completed { answer } => answer.clone(),
        OutcomeState::Waiting { calls } => format!(
            "It waits for tool results: {calls}. Resolve them with sessions/execute \
             (parent_session_id {}).",
            o.session_id
        ),
        OutcomeState::Failed { error } => error.clone(),
    };
    if let [one] = outcomes {
        return match &one.state {
            OutcomeState::Completed { .. } => format!(
                "subagent {} (session {}) completed:\n{}",
                one.name,
                one.session_id,
                body(one)
            ),
            OutcomeState::Failed { .. } => format!(
                "subagent {} (session {}) failed: {}",
                one.name,
                one.session_id,
                body(one)
            ),
            OutcomeState::Waiting { .. } => format!(
                "subagent {} (session {}) is waiting for tool results. {}",
                one.name,
                one.session_id,
                body(one)
            ),
        };
    }
    let mut out = format!("Results of {} subagents:", outcomes.len());
    for o in outcomes {
        let _ = write!(
            out,
            "\n\n## {} (session {}): {}\n{}",
            o.name,
            o.session_id,
            o.state.label(),
            body(o)
        );
    }
    out
}

/// The answer in a session's transcript: the main agent's last text.
fn answer_of(messages: &[DisplayMessage]) -> Option<String> {
    messages.iter().rev().find_map(|m| match m {
        DisplayMessage::AssistantText { agent_id, text } if agent_id == MAIN_AGENT => {
            Some(text.clone())
        }
        _ => None,
    })
}

impl RunEngine {
    /// Fires the conversation's mailbox (spec 05): `req` continues the conversation (its
    /// target is [`RunTarget::Continue`]) from its latest committed agent session, with the
    /// rendered outcomes before the caller's input.
    ///
    /// # Errors
    /// [`RunError::MailboxEmpty`] when nothing waits; otherwise as [`RunEngine::start`],
    /// and then every taken message is pending again.
    pub async fn fire(self: &Arc<Self>, req: RunRequest) -> Result<StartedRun, RunError> {
        let RunTarget::Continue { conversation_id } = &req.target else {
            return Err(RunError::invalid(
                "conversation_id",
                "fire continues an existing conversation",
            ));
        };
        // The request moves into the run; its conversation is needed after.
        let conversation_id = conversation_id.clone();
        self.conversation(&conversation_id).await?;
        // Not authoritative (the session insert is), but spares a drain and a release.
        if let Some(h) = self.registry.agent_run_of(&conversation_id) {
            return Err(RunError::Busy(ActiveSession {
                session_id: h.session_id.clone(),
                stream_key: h.stream_key.clone(),
                transport: h.transport,
            }));
        }
        let session_id = SessionId::generate();
        let taken = self
            .ports
            .mailbox
            .take_undelivered(&conversation_id, &session_id)
            .await?;
        if taken.is_empty() {
            return Err(RunError::MailboxEmpty);
        }
        let prelude = render(&self.outcomes(&taken).await);
        match self.start_as(session_id.clone(), req, Some(prelude)).await {
            Ok(started) => Ok(started),
            Err(e) => {
                match self.ports.mailbox.release_delivered(&session_id).await {
                    Ok(n) => {
                        tracing::info!(%conversation_id, released = n, error = %e, "fire did not start; its messages are pending again")
                    }
                    Err(release) => {
                        tracing::error!(%conversation_id, error = %release, "fire did not start and its messages could not be released")
                    }
                }
                Err(e)
            }
        }
    }

    /// Each message's outcome, read from its source session (the message itself holds no
    /// text). What cannot be read is said in the outcome instead of failing the fire.
    async fn outcomes(&self, messages: &[MailboxMessage]) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let session = self.ports.sessions.get_session(&m.source_session_id).await;
            let state = match (m.source_type, session) {
                (MailboxSource::SubagentFailed, Ok(s)) => OutcomeState::Failed {
                    error: s
                        .error
                        .unwrap_or_else(|| "the session failed without a reason".to_owned()),
                },
                (MailboxSource::SubagentFailed, Err(e)) => OutcomeState::Failed {
                    error: format!("(its session could not be read: {e})"),
                },
                (MailboxSource::SubagentResult, Ok(s))
                    if s.status == SessionStatus::AwaitingToolResults =>
                {
                    OutcomeState::Waiting {
                        calls: s
                            .pending_tool_calls
                            .iter()
                            .map(|c| format!("{} ({})", c.tool_name, c.tool_call_id))
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                }
                (MailboxSource::SubagentResult, _) => {
                    let answer = match self
                        .ports
                        .state_store
                        .load_display_messages(&m.source_session_id)
                        .await
                    {
                        Ok(messages) => {
                            answer_of(&messages).unwrap_or_else(|| "(it gave no answer)".to_owned())
                        }
                        Err(e) => format!("(its answer could not be read: {e})"),
                    };
                    OutcomeState::Completed {
                        answer: truncate_chars(answer, MAX_ANSWER_CHARS),
                    }
                }
            };
            out.push(Outcome {
                name: m.subagent_name.clone(),
                session_id: m.source_session_id.clone(),
                state,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &str, state: OutcomeState) -> Outcome {
        Outcome {
            name: name.into(),
            session_id: format!("s-{name}").into(),
            state,
        }
    }

    #[test]
    fn one_outcome_is_a_short_paragraph() {
        let done = outcome(
            "alpha",
            OutcomeState::Completed {
                answer: "42 files".into(),
            },
        );
        assert_eq!(
            render(&[done]),
            "subagent alpha (session s-alpha) completed:\n42 files"
        );
        let failed = outcome(
            "beta",
            OutcomeState::Failed {
                error: "model_error: boom".into(),
            },
        );
        assert_eq!(
            render(&[failed]),
            "subagent beta (session s-beta) failed: model_error: boom"
        );
    }

    #[test]
    fn several_outcomes_get_one_section_each_with_status() {
        let text = render(&[
            outcome("alpha", OutcomeState::Completed { answer: "A".into() }),
            outcome("beta", OutcomeState::Failed { error: "E".into() }),
            outcome(
                "gamma",
                OutcomeState::Waiting {
                    calls: "shell (c1)".into(),
                },
            ),
        ]);
        assert_eq!(
            text,
            "Results of 3 subagents:\
             \n\n## alpha (session s-alpha): completed\nA\
             \n\n## beta (session s-beta): failed\nE\
             \n\n## gamma (session s-gamma): waiting for tool results\nIt waits for tool \
             results: shell (c1). Resolve them with sessions/execute (parent_session_id s-gamma)."
        );
    }

    #[test]
    fn the_answer_is_the_main_agents_last_text() {
        let messages = vec![
            DisplayMessage::AssistantText {
                agent_id: MAIN_AGENT.into(),
                text: "first".into(),
            },
            DisplayMessage::AssistantText {
                agent_id: MAIN_AGENT.into(),
                text: "final".into(),
            },
            DisplayMessage::AssistantText {
                agent_id: "helper".into(),
                text: "nested".into(),
            },
        ];
        assert_eq!(answer_of(&messages).as_deref(), Some("final"));
        assert_eq!(answer_of(&[]), None);
    }
}
