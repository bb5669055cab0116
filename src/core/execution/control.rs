//! Live control (spec 05): interrupt and steer, straight through the in-process registry.
//! `attach.rs` adds the other live operation, attaching to a run's events.

use std::sync::Arc;

use ports::{ConversationId, SessionId};
use ports::{ConversationRepo, Downloader, EventBus, SessionRepo, StorageError};

use super::engine::Ports;
use super::input::{self, InputLimits};
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
    /// The steer breaks a rule of run input, or an oversize message id.
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
    downloader: Arc<dyn Downloader>,
    input_limits: InputLimits,
    pub(super) registry: Arc<Registry>,
}

impl LiveRuns {
    pub(super) fn new(ports: &Ports, input_limits: InputLimits, registry: Arc<Registry>) -> Self {
        Self {
            conversations: ports.conversations.clone(),
            sessions: ports.sessions.clone(),
            bus: ports.bus.clone(),
            downloader: ports.downloader.clone(),
            input_limits,
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
    /// `Invalid` for input a run would refuse (checked first) or attachments that cannot be
    /// saved; `TooMany` while its queue is full.
    pub async fn steer_session(
        &self,
        session_id: &SessionId,
        parts: Vec<ports::InputPart>,
        message_id: Option<String>,
    ) -> Result<Steered, SteerError> {
        let input = SteerInput::parse(parts, message_id, &self.input_limits)?;
        let handle = self.running(session_id).await?;
        self.steer(&handle, input).await
    }

    /// Steers the conversation's running agent session.
    ///
    /// # Errors
    /// `NotFound` for an unknown conversation, `NotRunning` when no agent session runs;
    /// otherwise as [`Self::steer_session`].
    pub async fn steer_conversation(
        &self,
        conversation_id: &ConversationId,
        parts: Vec<ports::InputPart>,
        message_id: Option<String>,
    ) -> Result<Steered, SteerError> {
        let input = SteerInput::parse(parts, message_id, &self.input_limits)?;
        let Some(handle) = self.registry.agent_run_of(conversation_id) else {
            self.known_conversation(conversation_id).await?;
            return Err(ControlError::NotRunning(
                "the conversation has no running agent session".to_owned(),
            )
            .into());
        };
        self.steer(&handle, input).await
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

/// A steer that keeps a run input's rules (spec 03: parts, their caps, no blank input)
/// and a message id within its cap; its attachments are saved once it is known to have a
/// run to go to.
#[derive(Debug, Clone, PartialEq)]
struct SteerInput {
    parts: Vec<ports::InputPart>,
    message_id: Option<String>,
}

impl SteerInput {
    /// # Errors
    /// `Invalid`, naming every broken rule.
    fn parse(
        parts: Vec<ports::InputPart>,
        message_id: Option<String>,
        limits: &InputLimits,
    ) -> Result<Self, ControlError> {
        let mut errors = input::validate(&parts, limits).err().unwrap_or_default();
        if let Some(id) = &message_id
            && id.len() > limits::MAX_STEER_ID_BYTES
        {
            errors.push(FieldError {
                field: "message_id".to_owned(),
                message: format!(
                    "is {} bytes; at most {} are allowed",
                    id.len(),
                    limits::MAX_STEER_ID_BYTES
                ),
            });
        }
        if errors.is_empty() {
            Ok(Self { parts, message_id })
        } else {
            Err(ControlError::Invalid(errors))
        }
    }

    /// About the bytes the steer will hold once its attachments are saved: its text twice
    /// (the model's copy and the conversation's) and its inline data. Files and downloads
    /// are not known before they are read; the queue counts them exactly when the steer
    /// joins it.
    fn held_bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|part| match part {
                ports::InputPart::Text { text } => 2 * text.len(),
                ports::InputPart::Binary { data, .. } => data.len(),
                ports::InputPart::Url { url } => url.len(),
                ports::InputPart::File { path } => path.len(),
            })
            .sum()
    }
}

impl LiveRuns {
    /// Saves the steer's attachments in the run's workspace, as a run's input would be,
    /// and queues it. A message id queued before answers `Duplicate` without saving again.
    async fn steer(&self, handle: &RunHandle, input: SteerInput) -> Result<Steered, SteerError> {
        let held_bytes = input.held_bytes();
        let message_id = input
            .message_id
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        if handle.steered(&message_id) {
            return Ok(Steered {
                session_id: handle.session_id.clone(),
                message_id,
                outcome: SteerOutcome::Duplicate,
            });
        }
        handle
            .control
            .steering()
            .room_for(held_bytes)
            .map_err(refused)?;
        let materialized = input::materialize(
            input.parts,
            &*handle.workspace,
            &*self.downloader,
            input::steer_uploads(&handle.session_id),
            &self.input_limits,
        )
        .await
        .map_err(ControlError::Invalid)?;
        let outcome = handle
            .steer(Steer {
                message_id: message_id.clone(),
                parts: materialized.parts,
                text: materialized.display_text,
            })
            .map_err(refused)?;
        Ok(Steered {
            session_id: handle.session_id.clone(),
            message_id,
            outcome,
        })
    }
}

fn refused(e: SteerRefused) -> SteerError {
    match e {
        SteerRefused::Closed => SteerError::Control(ControlError::NotRunning(e.to_string())),
        SteerRefused::QueueFull { .. } | SteerRefused::QueueBytes { .. } => {
            SteerError::TooMany(e.to_string())
        }
    }
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

    fn limits() -> InputLimits {
        InputLimits {
            max_text_bytes: 8,
            ..InputLimits::default()
        }
    }

    #[test]
    fn a_steer_keeps_the_rules_of_run_input_with_every_broken_rule_named() {
        let ok = SteerInput::parse(vec![text("go"), text("left")], Some("m1".into()), &limits())
            .unwrap();
        assert_eq!(ok.parts, [text("go"), text("left")]);
        let blank = SteerInput::parse(vec![text(" \n")], None, &limits()).unwrap_err();
        assert_eq!(fields(blank), ["input"]);
        let none = SteerInput::parse(Vec::new(), None, &limits()).unwrap_err();
        assert_eq!(fields(none), ["input"]);
        let image = ports::InputPart::Binary {
            data: "not base64!".into(),
            mime_type: "image".into(),
            name: None,
        };
        let all = SteerInput::parse(
            vec![text("x".repeat(9)), image],
            Some("i".repeat(limits::MAX_STEER_ID_BYTES + 1)),
            &limits(),
        )
        .unwrap_err();
        assert_eq!(
            fields(all),
            [
                "input[0].text",
                "input[1].data",
                "input[1].mime_type",
                "message_id"
            ]
        );
        let file = ports::InputPart::File {
            path: "a.png".into(),
        };
        let with_file = SteerInput::parse(vec![text("look"), file.clone()], None, &limits());
        assert_eq!(with_file.unwrap().parts, [text("look"), file]);
    }
}
