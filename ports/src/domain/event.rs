//! The event protocol (spec 04): a flat envelope with a typed payload per event type.

use serde::{Deserialize, Serialize};

use super::{
    ConversationId, Limit, PendingToolCall, PresetId, RunSummary, SessionId, SessionStatus,
    SessionType, Timestamp, Transport, Usage,
};

/// The agent id of the top-level agent; subagents carry their own.
pub const MAIN_AGENT: &str = "main";

/// One event of a run. `event_id` counts 1, 2, 3 … within the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: u64,
    pub session_id: String,
    pub agent_id: String,
    pub timestamp: Timestamp,
    #[serde(flatten)]
    pub payload: EventPayload,
}

impl EventEnvelope {
    /// True for `run_completed` and `run_failed`: nothing follows them.
    pub fn is_terminal(&self) -> bool {
        self.payload.is_terminal()
    }
}

/// The typed payload, tagged by `event_type` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "payload", rename_all = "snake_case")]
pub enum EventPayload {
    RunStarted(RunStarted),
    RunCompleted(RunCompleted),
    RunFailed(RunFailed),
    MessageStart(MessageStart),
    ContentDelta(ContentDelta),
    ContentDone(ContentDone),
    MessageEnd(MessageEnd),
    ToolCallStart(ToolCallStart),
    ToolCallArgsDelta(ToolCallArgsDelta),
    ToolCallResult(ToolCallResultPayload),
    ToolCallEnd(ToolCallEnd),
    SubagentStarted(SubagentStarted),
    SubagentCompleted(SubagentCompleted),
    CompactStarted(CompactStarted),
    CompactCompleted(CompactCompleted),
    HandoffCompleted(HandoffCompleted),
    InterruptReceived(InterruptReceived),
    SteeringInjected(SteeringInjected),
    UsageSnapshot(UsageSnapshot),
    Warning(Warning),
}

impl EventPayload {
    /// True for the two terminal types.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::RunCompleted(_) | Self::RunFailed(_))
    }

    /// The `event_type` spelling.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::RunStarted(_) => "run_started",
            Self::RunCompleted(_) => "run_completed",
            Self::RunFailed(_) => "run_failed",
            Self::MessageStart(_) => "message_start",
            Self::ContentDelta(_) => "content_delta",
            Self::ContentDone(_) => "content_done",
            Self::MessageEnd(_) => "message_end",
            Self::ToolCallStart(_) => "tool_call_start",
            Self::ToolCallArgsDelta(_) => "tool_call_args_delta",
            Self::ToolCallResult(_) => "tool_call_result",
            Self::ToolCallEnd(_) => "tool_call_end",
            Self::SubagentStarted(_) => "subagent_started",
            Self::SubagentCompleted(_) => "subagent_completed",
            Self::CompactStarted(_) => "compact_started",
            Self::CompactCompleted(_) => "compact_completed",
            Self::HandoffCompleted(_) => "handoff_completed",
            Self::InterruptReceived(_) => "interrupt_received",
            Self::SteeringInjected(_) => "steering_injected",
            Self::UsageSnapshot(_) => "usage_snapshot",
            Self::Warning(_) => "warning",
        }
    }
}

/// Text or thinking content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    Text,
    Thinking,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    pub conversation_id: ConversationId,
    pub session_type: SessionType,
    pub transport: Transport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_session_id: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset_id: Option<PresetId>,
}

/// Why a run that committed stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    Completed,
    /// A caller interrupted it; what it produced so far was committed.
    Interrupted,
    /// A cap of the preset's `limits` stopped it (`limit` says which).
    LimitReached,
    /// It stopped on tool calls that wait for a human or the caller.
    AwaitingToolResults,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCompleted {
    pub status: SessionStatus,
    pub stop_reason: StopReason,
    /// What stopped the run, when it was not the model's own decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The cap reached, when `stop_reason` is `limit_reached`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    pub run_summary: RunSummary,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_tool_calls: Vec<PendingToolCall>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFailed {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageStart {
    pub message_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentDelta {
    pub kind: ContentKind,
    pub delta: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentDone {
    pub kind: ContentKind,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageEnd {
    pub message_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallStart {
    pub tool_call_id: String,
    pub tool_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallArgsDelta {
    pub tool_call_id: String,
    pub delta: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallResultPayload {
    pub tool_call_id: String,
    pub tool_name: String,
    pub output: String,
    pub is_error: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallEnd {
    pub tool_call_id: String,
    pub status: super::ToolCallStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubagentStarted {
    pub subagent_name: String,
    pub subagent_agent_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubagentCompleted {
    pub subagent_name: String,
    pub subagent_agent_id: String,
    pub status: super::ToolCallStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactStarted {
    pub messages_before: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactCompleted {
    pub messages_before: u64,
    pub messages_after: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffCompleted {
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterruptReceived {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteeringInjected {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageSnapshot {
    pub usage: Usage,
}

/// Something the run should know that does not stop it (the shell runs without its
/// sandbox, …). Non-terminal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// Stable, e.g. `sandbox_off`.
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RunSummary, from_micros};

    fn envelope(payload: EventPayload) -> EventEnvelope {
        EventEnvelope {
            event_id: 7,
            session_id: "s1".into(),
            agent_id: MAIN_AGENT.into(),
            timestamp: from_micros(1_700_000_000_123_456),
            payload,
        }
    }

    #[test]
    fn envelope_is_flat_on_the_wire() {
        let ev = envelope(EventPayload::ContentDelta(ContentDelta {
            kind: ContentKind::Text,
            delta: "hi".into(),
        }));
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "event_id": 7, "session_id": "s1", "agent_id": "main",
                "timestamp": "2023-11-14T22:13:20.123456Z",
                "event_type": "content_delta",
                "payload": {"kind": "text", "delta": "hi"}
            })
        );
        let back: EventEnvelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn only_completion_and_failure_are_terminal() {
        let done = envelope(EventPayload::RunCompleted(RunCompleted {
            status: crate::SessionStatus::Committed,
            stop_reason: StopReason::Completed,
            message: None,
            limit: None,
            run_summary: RunSummary::default(),
            pending_tool_calls: vec![],
        }));
        let failed = envelope(EventPayload::RunFailed(RunFailed {
            code: "x".into(),
            message: "y".into(),
        }));
        let started = envelope(EventPayload::InterruptReceived(InterruptReceived {
            reason: None,
        }));
        assert!(done.is_terminal() && failed.is_terminal());
        assert!(!started.is_terminal());
        assert_eq!(done.payload.event_type(), "run_completed");
    }
}
