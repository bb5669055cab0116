//! The large, immutable part of a session, kept in the state store (spec 01):
//! `state.json` ([`SessionState`]) and `display_messages.json` ([`DisplayMessage`]s).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ModelMessage, PendingToolCall, SessionId, Usage};

/// Everything a later run needs to continue exactly where this one stopped.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SessionState {
    #[serde(default)]
    pub context_state: ContextState,
    #[serde(default)]
    pub message_history: Vec<ModelMessage>,
}

/// The agent loop's own state besides history.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContextState {
    #[serde(default)]
    pub tasks: Vec<Task>,
    /// Sync subagent histories by subagent name, so a later delegate continues them.
    #[serde(default)]
    pub subagent_histories: BTreeMap<String, Vec<ModelMessage>>,
    /// Async subagent name → its latest session id.
    #[serde(default)]
    pub async_subagents: BTreeMap<String, SessionId>,
    /// Usage accumulated over the whole chain.
    #[serde(default)]
    pub usage: Usage,
    /// The notes of the agent's latest `handoff`, shown in every later system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_notes: Option<String>,
    /// Deferred calls the next run must resolve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_tool_calls: Vec<PendingToolCall>,
}

/// A task of the agent's task list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub subject: String,
    #[serde(default)]
    pub description: String,
    pub status: TaskStatus,
}

/// Progress of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    InProgress,
    Completed,
}

/// Outcome of a tool call as shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    Success,
    Error,
    Pending,
    Cancelled,
}

/// One entry of the caller-facing transcript, compressed from the event stream (spec 04).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DisplayMessage {
    User {
        text: String,
    },
    AssistantText {
        agent_id: String,
        text: String,
    },
    Thinking {
        agent_id: String,
        text: String,
    },
    ToolCall {
        agent_id: String,
        tool_call_id: String,
        tool_name: String,
        args: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
        status: ToolCallStatus,
    },
    Subagent {
        agent_id: String,
        subagent_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
        status: ToolCallStatus,
    },
    Error {
        code: String,
        message: String,
    },
    /// A `warning` event: something the run should know that did not stop it.
    Warning {
        code: String,
        message: String,
    },
}
