//! Live control (spec 05): interrupt and steer, straight through the in-process registry.
//! `attach.rs` adds the other live operation, attaching to a run's events.

use std::sync::Arc;

use ports::{ConversationId, SessionId};
use ports::{ConversationRepo, EventBus, SessionRepo, StorageError};

use super::engine::Ports;
use super::registry::{Registry, RunHandle, SteerOutcome};
use crate::core::limits;
use crate::core::preset_validation::FieldError;
use crate::core::run::{Steer, SteerRefused};

/// Why a control request did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The session exists but is not running (or is finishing and takes no more steering).
    #[error("{0}")]
    NotRunning(String),
    /// The steer breaks a rule (empty or oversize text, an oversize message id).
    #[error("invalid steer")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a steer was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SteerError {
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The session already holds the most queued steers; retry after its next step.
    #[error("{0}")]
    TooMany(String),
}

/// A steer that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steered {
    pub session_id: SessionId,
    pub message_id: String,
    pub outcome: SteerOutcome,
}

/// What callers do to runs while they go: interrupt, steer, attach to their events.
pub struct LiveRuns {
    pub(super) conversations: Arc<dyn ConversationRepo>,
    pub(super) sessions: Arc<dyn SessionRepo>,
    pub(super) bus: Arc<dyn EventBus>,
    pub(super) registry: Arc<Registry>,
}

impl LiveRuns {
    pub(super) fn new(ports: &Ports, registry: Arc<Registry>) -> Self {
        Self {
            conversations: ports.conversations.clone(),
            sessions: ports.sessions.clone(),
            bus: ports.bus.clone(),
            registry,
        }
    }

    /// Interrupts a running session. Idempotent while it is stopping.
    ///
    /// # Errors
    /// `NotFound` for an unknown session, `NotRunning` for a finished one.
    pub async fn interrupt_session(
        &self,
        session_id: &SessionId,
        reason: Option<String>,
    ) -> Result<(), ControlError> {
        let handle = self.running(session_id).await?;
        handle.control.interrupt(reason);
        Ok(())
    }

    /// Interrupts every running session of a conversation (agent and async subagents);
    /// returns their ids (none when nothing was running).
    ///
    /// # Errors
    /// `NotFound` for an unknown conversation.
    pub async fn interrupt_conversation(
        &self,
        conversation_id: &ConversationId,
        reason: Option<String>,
    ) -> Result<Vec<SessionId>, ControlError> {
        let runs = self.registry.runs_of(conversation_id);
        if runs.is_empty() {
            self.known_conversation(conversation_id).await?;
        }
        Ok(runs
            .into_iter()
            .map(|h| {
                h.control.interrupt(reason.clone());
                h.session_id.clone()
            })
            .collect())
    }

    /// Queues guidance for a running session's next step boundary; a repeated
    /// `message_id` is queued once.
    ///
    /// # Errors
    /// `NotFound`, or `NotRunning` when the session is not running or already finishing;
    /// `Invalid` for an empty or oversize steer; `TooMany` while its queue is full.
    pub async fn steer_session(
        &self,
        session_id: &SessionId,
        input: SteerInput,
    ) -> Result<Steered, SteerError> {
        let handle = self.running(session_id).await?;
        steer(&handle, input)
    }

    /// Steers the conversation's running agent session.
    ///
    /// # Errors
    /// `NotFound` for an unknown conversation, `NotRunning` when no agent session runs;
    /// otherwise as [`Self::steer_session`].
    pub async fn steer_conversation(
        &self,
        conversation_id: &ConversationId,
        input: SteerInput,
    ) -> Result<Steered, SteerError> {
        let Some(handle) = self.registry.agent_run_of(conversation_id) else {
            self.known_conversation(conversation_id).await?;
            return Err(ControlError::NotRunning(
                "the conversation has no running agent session".to_owned(),
            )
            .into());
        };
        steer(&handle, input)
    }

    async fn running(&self, session_id: &SessionId) -> Result<Arc<RunHandle>, ControlError> {
        if let Some(handle) = self.registry.get(session_id) {
            return Ok(handle);
        }
        match self.sessions.get_session(session_id).await {
            Err(StorageError::NotFound) => Err(ControlError::NotFound("session")),
            Err(e) => Err(e.into()),
            Ok(s) => Err(ControlError::NotRunning(format!(
                "session {session_id} is not running (it is {})",
                s.status.as_str()
            ))),
        }
    }

    async fn known_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<(), ControlError> {
        match self.conversations.get_conversation(conversation_id).await {
            Ok(_) => Ok(()),
            Err(StorageError::NotFound) => Err(ControlError::NotFound("conversation")),
            Err(e) => Err(e.into()),
        }
    }
}

/// A steer that keeps the rules: text neither blank nor over its cap, a message id within
/// its cap. Made where the request arrives; live control takes nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteerInput {
    text: String,
    message_id: Option<String>,
}

impl SteerInput {
    /// # Errors
    /// `Invalid`, naming every broken rule.
    pub fn parse(
        input: Vec<ports::InputPart>,
        message_id: Option<String>,
    ) -> Result<Self, ControlError> {
        let (text, mut errors) = text_of(input);
        if text.trim().is_empty() {
            errors.push(field_error("input", "input is empty".to_owned()));
        } else if text.len() > limits::MAX_STEER_BYTES {
            errors.push(field_error(
                "input",
                format!(
                    "is {} bytes; at most {} are allowed",
                    text.len(),
                    limits::MAX_STEER_BYTES
                ),
            ));
        }
        if let Some(id) = &message_id
            && id.len() > limits::MAX_STEER_ID_BYTES
        {
            errors.push(field_error(
                "message_id",
                format!(
                    "is {} bytes; at most {} are allowed",
                    id.len(),
                    limits::MAX_STEER_ID_BYTES
                ),
            ));
        }
        if errors.is_empty() {
            Ok(Self { text, message_id })
        } else {
            Err(ControlError::Invalid(errors))
        }
    }
}

/// The text of a steer's parts, joined by blank lines. Steering guides the next step in
/// words; files, URLs and inline data reach the agent through a run, where they are
/// fetched into its environment.
fn text_of(input: Vec<ports::InputPart>) -> (String, Vec<FieldError>) {
    let mut texts = Vec::with_capacity(input.len());
    let mut errors = Vec::new();
    for (i, part) in input.into_iter().enumerate() {
        match part {
            ports::InputPart::Text { text } => texts.push(text),
            other => errors.push(field_error(
                &format!("input[{i}]"),
                format!(
                    "steering takes text parts; a {} part reaches the agent through a run",
                    other.kind()
                ),
            )),
        }
    }
    (texts.join("\n\n"), errors)
}

fn field_error(field: &str, message: String) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message,
    }
}

fn steer(handle: &RunHandle, input: SteerInput) -> Result<Steered, SteerError> {
    let message_id = input
        .message_id
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let outcome = handle
        .steer(Steer {
            message_id: message_id.clone(),
            text: input.text,
        })
        .map_err(|e| match e {
            SteerRefused::Closed => SteerError::Control(ControlError::NotRunning(e.to_string())),
            SteerRefused::QueueFull { .. } => SteerError::TooMany(e.to_string()),
        })?;
    Ok(Steered {
        session_id: handle.session_id.clone(),
        message_id,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: ControlError) -> Vec<String> {
        match e {
            ControlError::Invalid(fields) => fields.into_iter().map(|f| f.field).collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn text(text: impl Into<String>) -> ports::InputPart {
        ports::InputPart::Text { text: text.into() }
    }

    #[test]
    fn a_steer_is_parsed_once_with_every_broken_rule_named() {
        let ok = SteerInput::parse(vec![text("go"), text("left")], Some("m1".into())).unwrap();
        assert_eq!(ok.text, "go\n\nleft");
        let blank = SteerInput::parse(vec![text(" \n")], None).unwrap_err();
        assert_eq!(fields(blank), ["input"]);
        let none = SteerInput::parse(Vec::new(), None).unwrap_err();
        assert_eq!(fields(none), ["input"]);
        let both = SteerInput::parse(
            vec![text("x".repeat(limits::MAX_STEER_BYTES + 1))],
            Some("i".repeat(limits::MAX_STEER_ID_BYTES + 1)),
        )
        .unwrap_err();
        assert_eq!(fields(both), ["input", "message_id"]);
        let file = ports::InputPart::File {
            path: "a.png".into(),
        };
        let mixed = SteerInput::parse(vec![text("look"), file], None).unwrap_err();
        assert_eq!(fields(mixed), ["input[1]"]);
    }
}
