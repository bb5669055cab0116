//! What a caller asks the run engine for, and how it can be refused.

use std::sync::Arc;

use ports::{
    ConversationId, InputPart, Limit, Metadata, ModelMessage, ModelSettings, Preset, PresetId,
    ReasoningEffort, RunLimits, SessionId, StorageError, StreamKey, ThinkingSettings, ToolsetSpec,
    Transport,
};

use super::external::ExternalTools;
use super::run_log::RunLog;
use crate::core::agent::Resolutions;
use crate::core::preset_validation::FieldError;

/// Where a run attaches in the session DAG (spec 01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunTarget {
    /// A root session: a new conversation whose id is the session id.
    NewConversation,
    /// Continue the conversation from its latest committed agent session.
    Continue { conversation_id: ConversationId },
    /// A new conversation from a session of `conversation_id` (default: its latest
    /// committed agent session).
    Fork {
        conversation_id: ConversationId,
        from_session_id: Option<SessionId>,
    },
    /// An explicit parent (`sessions/execute`); `fork` starts a new conversation from it.
    /// Without `fork`, a parent in an async subagent's chain continues that chain.
    Parent {
        parent_session_id: SessionId,
        fork: bool,
    },
    /// An async subagent session in the spawner's conversation (spec 05), continuing the
    /// subagent's chain after `previous` when given.
    AsyncSubagent {
        conversation_id: ConversationId,
        spawned_by: SessionId,
        name: String,
        previous: Option<SessionId>,
    },
}

/// Per-run changes to the preset; each given field wins over the preset's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigOverride {
    pub model: Option<ModelOverride>,
    pub system_prompt: Option<String>,
    pub toolsets: Option<Vec<ToolsetSpec>>,
    /// Caps for this run: each may lower the preset's, never raise it.
    pub limits: Option<RunLimits>,
}

/// Model settings changed field by field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelOverride {
    pub name: Option<String>,
    pub context_window: Option<u32>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub thinking: Option<ThinkingSettings>,
    pub reasoning_effort: Option<ReasoningEffort>,
    pub prompt_cache: Option<bool>,
    pub fallbacks: Option<Vec<String>>,
}

impl ModelOverride {
    /// `model` with every given field replaced.
    fn apply(&self, model: &mut ModelSettings) {
        let ModelSettings {
            name,
            context_window,
            temperature,
            max_tokens,
            thinking,
            reasoning_effort,
            prompt_cache,
            fallbacks,
        } = model;
        if let Some(v) = &self.name {
            v.clone_into(name);
        }
        replace(context_window, self.context_window);
        replace(temperature, self.temperature);
        replace(max_tokens, self.max_tokens);
        replace(thinking, self.thinking);
        replace(reasoning_effort, self.reasoning_effort);
        if let Some(v) = self.prompt_cache {
            *prompt_cache = v;
        }
        if let Some(v) = &self.fallbacks {
            fallbacks.clone_from(v);
        }
    }
}

/// Sets `field` when the override gives a value.
fn replace<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

impl ConfigOverride {
    /// The caps of the run: `base` (the preset's over the service's) with this override's
    /// lower ones.
    ///
    /// # Errors
    /// A cap above its base, as `config_override.limits.<cap>`.
    pub fn lowered(&self, base: RunLimits) -> Result<RunLimits, Vec<FieldError>> {
        let Some(over) = self.limits else {
            return Ok(base);
        };
        let mut limits = base;
        let mut errors = Vec::new();
        for limit in Limit::ALL {
            match (over.get(limit), base.get(limit)) {
                (Some(wanted), Some(cap)) if wanted > cap => errors.push(FieldError {
                    field: format!("config_override.limits.{}", limit.as_str()),
                    message: format!(
                        "may lower the preset's limit ({cap}), not raise it to {wanted}"
                    ),
                }),
                (Some(wanted), _) => limits.set(limit, Some(wanted)),
                (None, _) => {}
            }
        }
        if errors.is_empty() {
            Ok(limits)
        } else {
            Err(errors)
        }
    }

    /// The preset with this override applied (its caps: see [`Self::lowered`]).
    pub fn apply(&self, mut preset: Preset) -> Preset {
        if let Some(m) = &self.model {
            m.apply(&mut preset.model);
        }
        if let Some(p) = &self.system_prompt {
            p.clone_into(&mut preset.system_prompt);
        }
        if let Some(t) = &self.toolsets {
            preset.toolsets.clone_from(t);
        }
        preset
    }
}

/// One run to start.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub target: RunTarget,
    /// The preset to run; default: the conversation's default preset, else the default one.
    pub preset_id: Option<PresetId>,
    pub config_override: Option<ConfigOverride>,
    pub input: Vec<InputPart>,
    /// Answers to the calls the parent session left pending.
    pub resolutions: Resolutions,
    /// Caller-executed tools offered to the model for this run only.
    pub external_tools: ExternalTools,
    /// The history a root session starts from (a chat brought from elsewhere); ignored
    /// when the run has a parent, whose history it continues.
    pub history: Vec<ModelMessage>,
    pub transport: Transport,
    /// Pairs set on the run's conversation (added to an existing one's).
    pub metadata: Metadata,
}

impl RunRequest {
    /// A request with only the essentials; the rest empty.
    pub fn new(target: RunTarget, input: Vec<InputPart>, transport: Transport) -> Self {
        Self {
            target,
            preset_id: None,
            config_override: None,
            input,
            resolutions: Resolutions::default(),
            external_tools: ExternalTools::default(),
            history: Vec::new(),
            transport,
            metadata: Metadata::new(),
        }
    }
}

/// A run that has started: its first event (`run_started`) is already in `log`.
#[derive(Clone)]
pub struct StartedRun {
    pub session_id: SessionId,
    pub conversation_id: ConversationId,
    pub stream_key: StreamKey,
    pub transport: Transport,
    pub log: Arc<RunLog>,
}

/// The conversation's running agent session, reported with a 409.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    pub session_id: SessionId,
    pub stream_key: StreamKey,
    pub transport: Transport,
}

/// Why a run did not start. Nothing was created in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `what` (conversation, session) does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The conversation already runs an agent session.
    #[error("the conversation is busy with session {}", .0.session_id)]
    Busy(ActiveSession),
    /// The request breaks a rule; every broken rule is listed.
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// A needed backend is down, or the service is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// `fire` found no undelivered mailbox message.
    #[error("the mailbox has no undelivered messages")]
    MailboxEmpty,
    /// A retry key (`Idempotency-Key`) used with another request, or whose first request
    /// is still starting its run.
    #[error("{0}")]
    IdempotencyConflict(String),
    /// Every run slot is taken (`MAX_CONCURRENT_RUNS`); retry after a moment.
    #[error("{limit} runs are going, the most this service runs at once; retry in a moment")]
    TooManyRuns { limit: usize },
    /// Stored data is inconsistent (e.g. a committed session without its state).
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl RunError {
    /// A single broken rule.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }
}
