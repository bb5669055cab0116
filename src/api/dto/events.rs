//! Run events on the wire (spec 04): one payload schema per event type, one envelope schema
//! per type and `RunEvent`, the union of the envelopes discriminated on `event_type`.
//!
//! The SSE `data:` lines are written from the domain [`ports::EventEnvelope`] with serde;
//! these types only describe that JSON (and parse it back in tests and clients). A test
//! checks every event type against the domain serialisation.
//!
//! `$ref` fields carry no doc comment, default or nullable (any of them turns the `$ref`
//! into an `allOf`, which generated clients drop); the referenced types are documented.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object, Union};

/// Declares a wire enum mirroring a domain enum of the same name, with conversions both
/// ways (exhaustive, so a new domain variant breaks the build here).
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[oai(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl From<ports::$name> for $name {
            fn from(v: ports::$name) -> Self {
                match v {
                    $(ports::$name::$variant => Self::$variant),+
                }
            }
        }

        impl From<$name> for ports::$name {
            fn from(v: $name) -> Self {
                match v {
                    $($name::$variant => Self::$variant),+
                }
            }
        }
    };
}

wire_enum!(
    /// Which content a delta belongs to: `text` or `thinking`.
    ContentKind { Text, Thinking }
);

wire_enum!(
    /// Why a committed run stopped: `completed` (the model finished), `interrupted` (a
    /// caller interrupted it; what it produced was committed), `limit_reached` (a per-run
    /// limit stopped it) or `awaiting_tool_results` (it waits for approvals or external
    /// tool results).
    StopReason {
        Completed,
        Interrupted,
        LimitReached,
        AwaitingToolResults,
    }
);

wire_enum!(
    /// Outcome of a tool call or subagent: `success`, `error`, `pending` or `cancelled`.
    ToolCallStatus {
        Success,
        Error,
        Pending,
        Cancelled,
    }
);

wire_enum!(
    /// Session status: `created` while running, then `committed`, `awaiting_tool_results`
    /// or `failed`; `committed` sessions may later be `archived`.
    SessionStatus {
        Created,
        Committed,
        AwaitingToolResults,
        Failed,
        Archived,
    }
);

wire_enum!(
    /// What a notification tells: `session_started`, `session_finished` (with `status`),
    /// `awaiting_approval` (the session waits for its caller), `mailbox_updated` (an async
    /// subagent's outcome arrived) or `conversation_updated` (a new latest session, or an
    /// edit of its title or default preset).
    NotificationKind {
        SessionStarted,
        SessionFinished,
        AwaitingApproval,
        MailboxUpdated,
        ConversationUpdated,
    }
);

wire_enum!(
    /// `agent` sessions run the conversation's agent; `async_subagent` sessions run an
    /// asynchronous subagent beside it.
    SessionType { Agent, AsyncSubagent }
);

wire_enum!(
    /// How a run's events reach the caller that started it: `sse` (its response carries
    /// them: the `…/stream` and `…/wait` operations) or `stream` (202 at once; the events
    /// go to the event bus, where `…/events` reads them).
    Transport { Sse, Stream }
);

wire_enum!(
    /// The cap of the preset's `limits` a run reached (with `stop_reason: limit_reached`).
    Limit { MaxModelRequests, MaxTotalTokens, MaxDurationSecs, MaxToolCalls }
);

wire_enum!(
    /// Why a deferred tool call waits: `approval` (a human must approve it) or `external`
    /// (the caller supplies its result).
    PendingKind { Approval, External }
);

/// Token and request counts of a run.
#[derive(Object, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub total_tokens: u64,
    /// Every prompt token, cached ones included.
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub model_requests: u64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
}

/// What a finished run cost.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(skip_serializing_if_is_none)]
pub struct RunSummary {
    pub duration_ms: u64,
    pub usage: Usage,
    /// The model that answered the run's last request: the preset's, or one of its
    /// `fallbacks`.
    pub model: Option<String>,
}

/// A tool call the run did not execute; it waits for a human's approval or for the
/// caller's result.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct PendingToolCall {
    pub tool_call_id: String,
    pub tool_name: String,
    /// The call's arguments (any JSON).
    pub args: serde_json::Value,
    pub kind: PendingKind,
}

impl From<ports::Usage> for Usage {
    fn from(u: ports::Usage) -> Self {
        Self {
            total_tokens: u.total_tokens,
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            model_requests: u.model_requests,
            cache_read_tokens: u.cache_read_tokens,
            cache_write_tokens: u.cache_write_tokens,
        }
    }
}

impl From<ports::RunSummary> for RunSummary {
    fn from(s: ports::RunSummary) -> Self {
        Self {
            duration_ms: s.duration_ms,
            usage: s.usage.into(),
            model: s.model,
        }
    }
}

impl From<ports::PendingToolCall> for PendingToolCall {
    fn from(p: ports::PendingToolCall) -> Self {
        Self {
            tool_call_id: p.tool_call_id,
            tool_name: p.tool_name,
            args: p.args,
            kind: p.kind.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Payloads, one per event type.
// ---------------------------------------------------------------------------------------

/// Payload of `run_started`.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct RunStartedPayload {
    pub conversation_id: String,
    pub session_type: SessionType,
    pub transport: Transport,
    /// The session this run continues; absent for the first run of a conversation.
    pub parent_session_id: Option<String>,
    pub preset_id: Option<String>,
}

/// Payload of `run_completed` (terminal): the final status, why the run stopped, its cost
/// and the tool calls it waits for (only with status `awaiting_tool_results`).
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct RunCompletedPayload {
    pub status: SessionStatus,
    pub stop_reason: StopReason,
    /// What stopped the run, when it was not the model's own decision.
    pub message: Option<String>,
    pub limit: Option<Limit>,
    pub run_summary: RunSummary,
    /// Omitted when empty.
    #[oai(default, skip_serializing_if_is_empty)]
    pub pending_tool_calls: Vec<PendingToolCall>,
}

/// Payload of `run_failed` (terminal).
#[derive(Object, Debug, Clone, PartialEq)]
pub struct RunFailedPayload {
    /// Stable snake_case error code.
    pub code: String,
    pub message: String,
}

/// Payload of `message_start`: a model response begins.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct MessageStartPayload {
    pub message_id: String,
}

/// Payload of `content_delta`: a piece of text or thinking.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ContentDeltaPayload {
    pub kind: ContentKind,
    pub delta: String,
}

/// Payload of `content_done`: the whole text or thinking block the deltas built.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ContentDonePayload {
    pub kind: ContentKind,
    pub text: String,
}

/// Payload of `message_end`: a model response ended.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct MessageEndPayload {
    pub message_id: String,
}

/// Payload of `tool_call_start`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ToolCallStartPayload {
    pub tool_call_id: String,
    pub tool_name: String,
}

/// Payload of `tool_call_args_delta`: a piece of the call's JSON arguments.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ToolCallArgsDeltaPayload {
    pub tool_call_id: String,
    pub delta: String,
}

/// Payload of `tool_call_result`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ToolCallResultPayload {
    pub tool_call_id: String,
    pub tool_name: String,
    pub output: String,
    pub is_error: bool,
}

/// Payload of `tool_call_end`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ToolCallEndPayload {
    pub tool_call_id: String,
    pub status: ToolCallStatus,
}

/// Payload of `subagent_started`; the subagent's own events carry its agent id.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct SubagentStartedPayload {
    pub subagent_name: String,
    pub subagent_agent_id: String,
}

/// Payload of `subagent_completed`.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct SubagentCompletedPayload {
    pub subagent_name: String,
    pub subagent_agent_id: String,
    pub status: ToolCallStatus,
    pub result: Option<String>,
}

/// Payload of `compact_started`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct CompactStartedPayload {
    pub messages_before: u64,
}

/// Payload of `compact_completed`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct CompactCompletedPayload {
    pub messages_before: u64,
    pub messages_after: u64,
}

/// Payload of `handoff_completed`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct HandoffCompletedPayload {
    pub summary: String,
}

/// Payload of `interrupt_received`.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct InterruptReceivedPayload {
    pub reason: Option<String>,
}

/// Payload of `steering_injected`: a message injected into the running loop.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct SteeringInjectedPayload {
    pub message_id: Option<String>,
    pub text: String,
}

/// Payload of `usage_snapshot`: usage so far.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct UsageSnapshotPayload {
    pub usage: Usage,
}

/// Payload of `warning`: something the run should know that does not stop it; `code` is
/// stable (`sandbox_off`, `sandbox_unavailable`, …).
#[derive(Object, Debug, Clone, PartialEq)]
pub struct WarningPayload {
    pub code: String,
    pub message: String,
}

impl From<ports::RunStarted> for RunStartedPayload {
    fn from(p: ports::RunStarted) -> Self {
        Self {
            conversation_id: p.conversation_id.into(),
            session_type: p.session_type.into(),
            transport: p.transport.into(),
            parent_session_id: p.parent_session_id.map(Into::into),
            preset_id: p.preset_id.map(Into::into),
        }
    }
}

impl From<ports::RunCompleted> for RunCompletedPayload {
    fn from(p: ports::RunCompleted) -> Self {
        Self {
            status: p.status.into(),
            stop_reason: p.stop_reason.into(),
            message: p.message,
            limit: p.limit.map(Into::into),
            run_summary: p.run_summary.into(),
            pending_tool_calls: p.pending_tool_calls.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ports::RunFailed> for RunFailedPayload {
    fn from(p: ports::RunFailed) -> Self {
        Self {
            code: p.code,
            message: p.message,
        }
    }
}

impl From<ports::MessageStart> for MessageStartPayload {
    fn from(p: ports::MessageStart) -> Self {
        Self {
            message_id: p.message_id,
        }
    }
}

impl From<ports::ContentDelta> for ContentDeltaPayload {
    fn from(p: ports::ContentDelta) -> Self {
        Self {
            kind: p.kind.into(),
            delta: p.delta,
        }
    }
}

impl From<ports::ContentDone> for ContentDonePayload {
    fn from(p: ports::ContentDone) -> Self {
        Self {
            kind: p.kind.into(),
            text: p.text,
        }
    }
}

impl From<ports::MessageEnd> for MessageEndPayload {
    fn from(p: ports::MessageEnd) -> Self {
        Self {
            message_id: p.message_id,
        }
    }
}

impl From<ports::ToolCallStart> for ToolCallStartPayload {
    fn from(p: ports::ToolCallStart) -> Self {
        Self {
            tool_call_id: p.tool_call_id,
            tool_name: p.tool_name,
        }
    }
}

impl From<ports::ToolCallArgsDelta> for ToolCallArgsDeltaPayload {
    fn from(p: ports::ToolCallArgsDelta) -> Self {
        Self {
            tool_call_id: p.tool_call_id,
            delta: p.delta,
        }
    }
}

impl From<ports::ToolCallResultPayload> for ToolCallResultPayload {
    fn from(p: ports::ToolCallResultPayload) -> Self {
        Self {
            tool_call_id: p.tool_call_id,
            tool_name: p.tool_name,
            output: p.output,
            is_error: p.is_error,
        }
    }
}

impl From<ports::ToolCallEnd> for ToolCallEndPayload {
    fn from(p: ports::ToolCallEnd) -> Self {
        Self {
            tool_call_id: p.tool_call_id,
            status: p.status.into(),
        }
    }
}

impl From<ports::SubagentStarted> for SubagentStartedPayload {
    fn from(p: ports::SubagentStarted) -> Self {
        Self {
            subagent_name: p.subagent_name,
            subagent_agent_id: p.subagent_agent_id,
        }
    }
}

impl From<ports::SubagentCompleted> for SubagentCompletedPayload {
    fn from(p: ports::SubagentCompleted) -> Self {
        Self {
            subagent_name: p.subagent_name,
            subagent_agent_id: p.subagent_agent_id,
            status: p.status.into(),
            result: p.result,
        }
    }
}

impl From<ports::CompactStarted> for CompactStartedPayload {
    fn from(p: ports::CompactStarted) -> Self {
        Self {
            messages_before: p.messages_before,
        }
    }
}

impl From<ports::CompactCompleted> for CompactCompletedPayload {
    fn from(p: ports::CompactCompleted) -> Self {
        Self {
            messages_before: p.messages_before,
            messages_after: p.messages_after,
        }
    }
}

impl From<ports::HandoffCompleted> for HandoffCompletedPayload {
    fn from(p: ports::HandoffCompleted) -> Self {
        Self { summary: p.summary }
    }
}

impl From<ports::InterruptReceived> for InterruptReceivedPayload {
    fn from(p: ports::InterruptReceived) -> Self {
        Self { reason: p.reason }
    }
}

impl From<ports::SteeringInjected> for SteeringInjectedPayload {
    fn from(p: ports::SteeringInjected) -> Self {
        Self {
            message_id: p.message_id,
            text: p.text,
        }
    }
}

impl From<ports::Warning> for WarningPayload {
    fn from(p: ports::Warning) -> Self {
        Self {
            code: p.code,
            message: p.message,
        }
    }
}

impl From<ports::UsageSnapshot> for UsageSnapshotPayload {
    fn from(p: ports::UsageSnapshot) -> Self {
        Self {
            usage: p.usage.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Envelopes and the union.
// ---------------------------------------------------------------------------------------

/// Declares one envelope Object per event type, the `RunEvent` union over them and the
/// conversion from the domain envelope. `$Variant` names the domain `EventPayload`
/// variant, the union variant and the envelope Object alike.
macro_rules! run_events {
    ($($(#[$doc:meta])* $Variant:ident($Payload:ident) = $name:tt),+ $(,)?) => {
        $(
            $(#[$doc])*
            #[derive(Object, Debug, Clone, PartialEq)]
            pub struct $Variant {
                /// Sequence number within the session: 1, 2, 3 …
                pub event_id: u64,
                pub session_id: String,
                /// `main` or the subagent's id.
                pub agent_id: String,
                pub timestamp: DateTime<Utc>,
                pub payload: $Payload,
            }
        )+

        /// One event of a run, discriminated on `event_type`.
        #[derive(Union, Debug, Clone, PartialEq)]
        #[oai(discriminator_name = "event_type", one_of)]
        pub enum RunEvent {
            $(
                #[oai(mapping = $name)]
                $Variant($Variant),
            )+
        }

        impl RunEvent {
            /// The `event_type` spelling.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$Variant(_) => $name,)+
                }
            }

            /// Every `event_type` the union maps.
            pub const EVENT_TYPES: &'static [&'static str] = &[$($name),+];
        }

        impl From<ports::EventEnvelope> for RunEvent {
            fn from(e: ports::EventEnvelope) -> Self {
                let ports::EventEnvelope {
                    event_id,
                    session_id,
                    agent_id,
                    timestamp,
                    payload,
                } = e;
                match payload {
                    $(
                        ports::EventPayload::$Variant(p) => Self::$Variant($Variant {
                            event_id,
                            session_id,
                            agent_id,
                            timestamp,
                            payload: p.into(),
                        }),
                    )+
                }
            }
        }
    };
}

run_events!(
    /// `run_started`: a run began.
    RunStarted(RunStartedPayload) = "run_started",
    /// `run_completed` (terminal): the run committed.
    RunCompleted(RunCompletedPayload) = "run_completed",
    /// `run_failed` (terminal): the run failed.
    RunFailed(RunFailedPayload) = "run_failed",
    /// `message_start`: a model response begins.
    MessageStart(MessageStartPayload) = "message_start",
    /// `content_delta`: a piece of text or thinking.
    ContentDelta(ContentDeltaPayload) = "content_delta",
    /// `content_done`: a text or thinking block is complete.
    ContentDone(ContentDonePayload) = "content_done",
    /// `message_end`: a model response ended.
    MessageEnd(MessageEndPayload) = "message_end",
    /// `tool_call_start`: the model began a tool call.
    ToolCallStart(ToolCallStartPayload) = "tool_call_start",
    /// `tool_call_args_delta`: a piece of a tool call's arguments.
    ToolCallArgsDelta(ToolCallArgsDeltaPayload) = "tool_call_args_delta",
    /// `tool_call_result`: a tool call's output.
    ToolCallResult(ToolCallResultPayload) = "tool_call_result",
    /// `tool_call_end`: a tool call finished.
    ToolCallEnd(ToolCallEndPayload) = "tool_call_end",
    /// `subagent_started`: a subagent began.
    SubagentStarted(SubagentStartedPayload) = "subagent_started",
    /// `subagent_completed`: a subagent finished.
    SubagentCompleted(SubagentCompletedPayload) = "subagent_completed",
    /// `compact_started`: context compaction began.
    CompactStarted(CompactStartedPayload) = "compact_started",
    /// `compact_completed`: context compaction finished.
    CompactCompleted(CompactCompletedPayload) = "compact_completed",
    /// `handoff_completed`: the context was handed off to a fresh one.
    HandoffCompleted(HandoffCompletedPayload) = "handoff_completed",
    /// `interrupt_received`: a caller asked the run to stop.
    InterruptReceived(InterruptReceivedPayload) = "interrupt_received",
    /// `steering_injected`: a caller's message was injected into the run.
    SteeringInjected(SteeringInjectedPayload) = "steering_injected",
    /// `usage_snapshot`: usage so far.
    UsageSnapshot(UsageSnapshotPayload) = "usage_snapshot",
    /// `warning`: something the run should know that does not stop it.
    Warning(WarningPayload) = "warning",
);

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use poem_openapi::{
        registry::{MetaSchemaRef, Registry},
        types::{ParseFromJSON, ToJSON, Type},
    };
    use ports::{EventEnvelope, EventPayload as P, from_micros};

    use super::*;

    /// Fails to compile when a variant is added, so [`payloads`] is kept complete.
    fn variant_index(p: &P) -> usize {
        match p {
            P::RunStarted(_) => 0,
            P::RunCompleted(_) => 1,
            P::RunFailed(_) => 2,
            P::MessageStart(_) => 3,
            P::ContentDelta(_) => 4,
            P::ContentDone(_) => 5,
            P::MessageEnd(_) => 6,
            P::ToolCallStart(_) => 7,
            P::ToolCallArgsDelta(_) => 8,
            P::ToolCallResult(_) => 9,
            P::ToolCallEnd(_) => 10,
            P::SubagentStarted(_) => 11,
            P::SubagentCompleted(_) => 12,
            P::CompactStarted(_) => 13,
            P::CompactCompleted(_) => 14,
            P::HandoffCompleted(_) => 15,
            P::InterruptReceived(_) => 16,
            P::SteeringInjected(_) => 17,
            P::UsageSnapshot(_) => 18,
            P::Warning(_) => 19,
        }
    }

    const VARIANTS: usize = 20;

    fn some(full: bool, s: &str) -> Option<String> {
        full.then(|| s.to_owned())
    }

    /// One payload of every type; `full` sets every optional field.
    pub(crate) fn payloads(full: bool) -> Vec<P> {
        let usage = ports::Usage {
            total_tokens: 30,
            prompt_tokens: 20,
            completion_tokens: 10,
            model_requests: 2,
            ..Default::default()
        };
        let pending = if full {
            vec![
                ports::PendingToolCall {
                    tool_call_id: "c1".into(),
                    tool_name: "shell".into(),
                    args: serde_json::json!({"cmd": "ls", "n": [1, 2.5, null], "x": {"y": true}}),
                    kind: ports::PendingKind::Approval,
                },
                ports::PendingToolCall {
                    tool_call_id: "c2".into(),
                    tool_name: "ext".into(),
                    args: serde_json::Value::Null,
                    kind: ports::PendingKind::External,
                },
            ]
        } else {
            vec![]
        };
        vec![
            P::RunStarted(ports::RunStarted {
                conversation_id: "c".into(),
                session_type: if full {
                    ports::SessionType::AsyncSubagent
                } else {
                    ports::SessionType::Agent
                },
                transport: if full {
                    ports::Transport::Stream
                } else {
                    ports::Transport::Sse
                },
                parent_session_id: some(full, "parent").map(Into::into),
                preset_id: some(full, "preset").map(Into::into),
            }),
            P::RunCompleted(ports::RunCompleted {
                status: if full {
                    ports::SessionStatus::AwaitingToolResults
                } else {
                    ports::SessionStatus::Committed
                },
                stop_reason: if full {
                    ports::StopReason::AwaitingToolResults
                } else {
                    ports::StopReason::Completed
                },
                message: some(full, "waiting"),
                limit: full.then_some(ports::Limit::MaxToolCalls),
                run_summary: ports::RunSummary {
                    duration_ms: 1234,
                    usage,
                    ..Default::default()
                },
                pending_tool_calls: pending,
            }),
            P::RunFailed(ports::RunFailed {
                code: "model_error".into(),
                message: "boom".into(),
            }),
            P::MessageStart(ports::MessageStart {
                message_id: "m1".into(),
            }),
            P::ContentDelta(ports::ContentDelta {
                kind: if full {
                    ports::ContentKind::Thinking
                } else {
                    ports::ContentKind::Text
                },
                delta: "he\"llo\n".into(),
            }),
            P::ContentDone(ports::ContentDone {
                kind: ports::ContentKind::Text,
                text: "hello".into(),
            }),
            P::MessageEnd(ports::MessageEnd {
                message_id: "m1".into(),
            }),
            P::ToolCallStart(ports::ToolCallStart {
                tool_call_id: "t1".into(),
                tool_name: "grep".into(),
            }),
            P::ToolCallArgsDelta(ports::ToolCallArgsDelta {
                tool_call_id: "t1".into(),
                delta: "{\"pat".into(),
            }),
            P::ToolCallResult(ports::ToolCallResultPayload {
                tool_call_id: "t1".into(),
                tool_name: "grep".into(),
                output: "x.rs:1".into(),
                is_error: full,
            }),
            P::ToolCallEnd(ports::ToolCallEnd {
                tool_call_id: "t1".into(),
                status: if full {
                    ports::ToolCallStatus::Cancelled
                } else {
                    ports::ToolCallStatus::Success
                },
            }),
            P::SubagentStarted(ports::SubagentStarted {
                subagent_name: "explorer".into(),
                subagent_agent_id: "explorer-1".into(),
            }),
            P::SubagentCompleted(ports::SubagentCompleted {
                subagent_name: "explorer".into(),
                subagent_agent_id: "explorer-1".into(),
                status: if full {
                    ports::ToolCallStatus::Error
                } else {
                    ports::ToolCallStatus::Pending
                },
                result: some(full, "found it"),
            }),
            P::CompactStarted(ports::CompactStarted {
                messages_before: 40,
            }),
            P::CompactCompleted(ports::CompactCompleted {
                messages_before: 40,
                messages_after: 3,
            }),
            P::HandoffCompleted(ports::HandoffCompleted {
                summary: "so far".into(),
            }),
            P::InterruptReceived(ports::InterruptReceived {
                reason: some(full, "user"),
            }),
            P::SteeringInjected(ports::SteeringInjected {
                message_id: some(full, "m2"),
                text: "also check y".into(),
            }),
            P::UsageSnapshot(ports::UsageSnapshot {
                usage: ports::Usage {
                    total_tokens: (1 << 53) - 1,
                    ..usage
                },
            }),
            P::Warning(ports::Warning {
                code: "sandbox_off".into(),
                message: "the shell runs without its sandbox".into(),
            }),
        ]
    }

    pub(crate) fn envelope(event_id: u64, payload: P) -> EventEnvelope {
        EventEnvelope {
            event_id,
            session_id: "s1".into(),
            agent_id: if event_id.is_multiple_of(2) {
                "explorer-1".into()
            } else {
                ports::MAIN_AGENT.into()
            },
            timestamp: from_micros(1_764_000_000_123_456 + event_id as i64),
            payload,
        }
    }

    /// Every sample envelope, with and without optional fields.
    fn samples() -> Vec<EventEnvelope> {
        [true, false]
            .into_iter()
            .flat_map(payloads)
            .enumerate()
            .map(|(i, p)| envelope(i as u64 + 1, p))
            .collect()
    }

    /// Rewrites the timestamp fields (RFC 3339, spelled `Z` by serde and `+00:00` by
    /// poem-openapi) as epoch microseconds.
    pub(crate) fn normalized(mut v: serde_json::Value) -> serde_json::Value {
        for key in ["timestamp", "created_at", "updated_at"] {
            if let Some(s) = v.get(key).and_then(|s| s.as_str()) {
                let t: DateTime<Utc> = s.parse().unwrap();
                v[key] = serde_json::json!(t.timestamp_micros());
            }
        }
        v
    }

    #[test]
    fn samples_cover_every_event_type() {
        for full in [true, false] {
            let indexes: BTreeSet<usize> = payloads(full).iter().map(variant_index).collect();
            assert_eq!(indexes, (0..VARIANTS).collect());
        }
    }

    #[test]
    fn domain_events_parse_as_run_events_and_serialise_back_identically() {
        for ev in samples() {
            let json = serde_json::to_value(&ev).unwrap();
            let parsed = RunEvent::parse_from_json(Some(json.clone()))
                .unwrap_or_else(|e| panic!("{json}: {}", e.into_message()));
            assert_eq!(parsed.event_type(), ev.payload.event_type());
            assert_eq!(
                normalized(parsed.to_json().unwrap()),
                normalized(json.clone())
            );
            // The conversion from the domain type yields the same value.
            assert_eq!(RunEvent::from(ev), parsed, "{json}");
        }
    }

    #[test]
    fn wrong_or_missing_event_type_is_rejected() {
        let ev = envelope(
            1,
            P::MessageStart(ports::MessageStart {
                message_id: "m".into(),
            }),
        );
        let mut json = serde_json::to_value(&ev).unwrap();
        json["event_type"] = serde_json::json!("nonsense");
        assert!(RunEvent::parse_from_json(Some(json.clone())).is_err());
        json.as_object_mut().unwrap().remove("event_type");
        assert!(RunEvent::parse_from_json(Some(json)).is_err());
    }

    fn registry() -> Registry {
        let mut registry = Registry::new();
        RunEvent::register(&mut registry);
        registry
    }

    #[test]
    fn union_mapping_matches_the_domain_event_types() {
        let registry = registry();
        let union = &registry.schemas["RunEvent"];
        let discriminator = union.discriminator.as_ref().unwrap();
        assert_eq!(discriminator.property_name, "event_type");
        let mapped: BTreeSet<&str> = discriminator
            .mapping
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        let domain: BTreeSet<&str> = payloads(true).iter().map(|p| p.event_type()).collect();
        assert_eq!(domain.len(), VARIANTS);
        assert_eq!(mapped, domain);
        assert_eq!(
            RunEvent::EVENT_TYPES
                .iter()
                .copied()
                .collect::<BTreeSet<_>>(),
            domain
        );
        assert_eq!(union.one_of.len(), VARIANTS);
        assert!(union.any_of.is_empty());
    }

    fn reference(r: &MetaSchemaRef) -> &str {
        match r {
            MetaSchemaRef::Reference(name) => name,
            MetaSchemaRef::Inline(s) => panic!("expected a $ref, got {s:?}"),
        }
    }

    #[test]
    fn every_envelope_and_payload_schema_is_registered() {
        let registry = registry();
        let discriminator = registry.schemas["RunEvent"].discriminator.clone().unwrap();
        for (event_type, target) in &discriminator.mapping {
            let variant_name = target.trim_start_matches("#/components/schemas/");
            let variant = &registry.schemas[variant_name];
            // allOf: [{event_type: enum [x]}, $ref Envelope]
            assert_eq!(variant.all_of.len(), 2, "{variant_name}");
            let MetaSchemaRef::Inline(tag) = &variant.all_of[0] else {
                panic!("{variant_name}: inline event_type schema expected");
            };
            assert_eq!(tag.required, vec!["event_type"]);
            let MetaSchemaRef::Inline(tag_prop) = &tag.properties[0].1 else {
                panic!("{variant_name}");
            };
            assert_eq!(tag_prop.enum_items, vec![serde_json::json!(event_type)]);
            let envelope = &registry.schemas[reference(&variant.all_of[1])];
            let props: BTreeSet<&str> = envelope.properties.iter().map(|(k, _)| *k).collect();
            assert_eq!(
                props,
                BTreeSet::from(["event_id", "session_id", "agent_id", "timestamp", "payload"])
            );
            let payload_ref = &envelope
                .properties
                .iter()
                .find(|(k, _)| *k == "payload")
                .unwrap()
                .1;
            let payload_name = reference(payload_ref);
            assert!(payload_name.ends_with("Payload"), "{payload_name}");
            assert!(
                registry.schemas.contains_key(payload_name),
                "{payload_name}"
            );
        }
        for name in [
            "ContentKind",
            "StopReason",
            "ToolCallStatus",
            "SessionStatus",
            "SessionType",
            "Transport",
            "PendingKind",
            "Usage",
            "RunSummary",
            "PendingToolCall",
        ] {
            assert!(registry.schemas.contains_key(name), "{name}");
        }
    }

    #[test]
    fn ref_fields_stay_bare() {
        // A description, default or nullable on a `$ref` field would produce an allOf.
        let registry = registry();
        for (name, schema) in &registry.schemas {
            if name.starts_with("RunEvent_") {
                continue;
            }
            for (prop, r) in &schema.properties {
                if let MetaSchemaRef::Inline(s) = r {
                    assert!(s.all_of.is_empty(), "{name}.{prop} is wrapped in allOf");
                }
            }
        }
    }

    #[test]
    fn enums_round_trip_through_the_domain() {
        for s in [
            ports::SessionStatus::Created,
            ports::SessionStatus::Committed,
            ports::SessionStatus::AwaitingToolResults,
            ports::SessionStatus::Failed,
            ports::SessionStatus::Archived,
        ] {
            let wire = SessionStatus::from(s);
            assert_eq!(ports::SessionStatus::from(wire), s);
            assert_eq!(wire.to_json().unwrap(), serde_json::to_value(s).unwrap());
        }
        for t in [ports::Transport::Sse, ports::Transport::Stream] {
            assert_eq!(
                Transport::from(t).to_json().unwrap(),
                serde_json::to_value(t).unwrap()
            );
        }
        assert!(Transport::parse_from_json(Some(serde_json::json!("carrier-pigeon"))).is_err());
    }
}
