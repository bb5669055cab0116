//! Sessions: immutable snapshots of one run, linked parent to child like commits (spec 01).

use serde::{Deserialize, Serialize};

use super::{ConversationId, PresetId, SessionId, Timestamp};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The stored and wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            /// Inverse of [`Self::as_str`].
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

string_enum!(
    /// `created` while running, then one of the final states.
    SessionStatus {
        Created => "created",
        Committed => "committed",
        AwaitingToolResults => "awaiting_tool_results",
        Failed => "failed",
        Archived => "archived",
    }
);

string_enum!(
    /// Agent sessions count for the one-running-session rule; async subagents do not.
    SessionType {
        Agent => "agent",
        AsyncSubagent => "async_subagent",
    }
);

string_enum!(
    /// How the run's events reach the caller who started it.
    Transport {
        Sse => "sse",
        Stream => "stream",
    }
);

/// Token and request counts of one run (or accumulated over a chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub total_tokens: u64,
    /// Every prompt token, cached ones included.
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub model_requests: u64,
    /// Prompt tokens read from the provider's prompt cache (billed at a fraction).
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
}

impl Usage {
    /// Adds another usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.total_tokens += other.total_tokens;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.model_requests += other.model_requests;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
    }
}

/// What a finished run cost.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunSummary {
    pub duration_ms: u64,
    pub usage: Usage,
    /// The model that answered the run's last request: the preset's, or a fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Why a deferred tool call waits (spec 05).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingKind {
    Approval,
    External,
}

/// A tool call the run did not execute, waiting for a human or for the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingToolCall {
    pub tool_call_id: String,
    pub tool_name: String,
    pub args: serde_json::Value,
    pub kind: PendingKind,
}

/// What a session is, with what only that kind has: an async subagent's session was
/// spawned by another session and reports to the mailbox under its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKind {
    Agent,
    AsyncSubagent {
        /// The session whose `async_delegate` call started the chain.
        spawned_by: SessionId,
        /// The name the spawner dispatched it under; its mailbox messages carry it.
        subagent_name: String,
    },
}

impl SessionKind {
    pub fn session_type(&self) -> SessionType {
        match self {
            Self::Agent => SessionType::Agent,
            Self::AsyncSubagent { .. } => SessionType::AsyncSubagent,
        }
    }

    pub fn spawned_by(&self) -> Option<&SessionId> {
        match self {
            Self::Agent => None,
            Self::AsyncSubagent { spawned_by, .. } => Some(spawned_by),
        }
    }

    pub fn subagent_name(&self) -> Option<&str> {
        match self {
            Self::Agent => None,
            Self::AsyncSubagent { subagent_name, .. } => Some(subagent_name),
        }
    }
}

/// The queryable part of a session, kept in SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub session_id: SessionId,
    pub parent_session_id: Option<SessionId>,
    pub conversation_id: ConversationId,
    pub kind: SessionKind,
    pub transport: Transport,
    pub preset_id: Option<PresetId>,
    pub status: SessionStatus,
    pub run_summary: Option<RunSummary>,
    pub pending_tool_calls: Vec<PendingToolCall>,
    /// Why the session failed, when it did.
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl SessionRecord {
    pub fn session_type(&self) -> SessionType {
        self.kind.session_type()
    }
}

/// The outcome written when a run ends; only a `created` session can receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionOutcome {
    /// One of the final states: committed, awaiting_tool_results or failed.
    pub status: SessionStatus,
    pub run_summary: Option<RunSummary>,
    pub pending_tool_calls: Vec<PendingToolCall>,
    pub error: Option<String>,
    pub finished_at: Timestamp,
}
