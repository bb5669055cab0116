//! Session, conversation and display-message DTOs (spec 01, 04, 06). Response types only:
//! optional fields are omitted when empty, never sent as null.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object, Union};

use super::events::{
    PendingToolCall, RunSummary, SessionStatus, SessionType, ToolCallStatus, Transport,
};

/// A message the user sent.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct UserMessage {
    pub text: String,
}

/// Text the assistant (or a subagent, by `agent_id`) wrote.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct AssistantTextMessage {
    pub agent_id: String,
    pub text: String,
}

/// The model's visible reasoning.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ThinkingMessage {
    pub agent_id: String,
    pub text: String,
}

/// A tool call with its arguments, result and status.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct ToolCallMessage {
    pub agent_id: String,
    pub tool_call_id: String,
    pub tool_name: String,
    /// The arguments as the model wrote them (JSON text).
    pub args: String,
    /// The tool's output; absent while the call is pending.
    pub result: Option<String>,
    pub status: ToolCallStatus,
}

/// A subagent's run, as one block.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct SubagentMessage {
    /// The subagent's agent id.
    pub agent_id: String,
    pub subagent_name: String,
    pub result: Option<String>,
    pub status: ToolCallStatus,
}

/// An error that ended or interrupted the run.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ErrorMessage {
    pub code: String,
    pub message: String,
}

/// Something the run was told that did not stop it (a `warning` event).
#[derive(Object, Debug, Clone, PartialEq)]
pub struct WarningMessage {
    pub code: String,
    pub message: String,
}

/// One entry of the caller-facing transcript, written from a run's events so a UI can
/// render it without replaying deltas; discriminated on `kind`.
#[derive(Union, Debug, Clone, PartialEq)]
#[oai(discriminator_name = "kind", one_of)]
pub enum DisplayMessage {
    #[oai(mapping = "user")]
    User(UserMessage),
    #[oai(mapping = "assistant_text")]
    AssistantText(AssistantTextMessage),
    #[oai(mapping = "thinking")]
    Thinking(ThinkingMessage),
    #[oai(mapping = "tool_call")]
    ToolCall(ToolCallMessage),
    #[oai(mapping = "subagent")]
    Subagent(SubagentMessage),
    #[oai(mapping = "error")]
    Error(ErrorMessage),
    #[oai(mapping = "warning")]
    Warning(WarningMessage),
}

impl From<ports::DisplayMessage> for DisplayMessage {
    fn from(m: ports::DisplayMessage) -> Self {
        use ports::DisplayMessage as D;
        match m {
            D::User { text } => Self::User(UserMessage { text }),
            D::AssistantText { agent_id, text } => {
                Self::AssistantText(AssistantTextMessage { agent_id, text })
            }
            D::Thinking { agent_id, text } => Self::Thinking(ThinkingMessage { agent_id, text }),
            D::ToolCall {
                agent_id,
                tool_call_id,
                tool_name,
                args,
                result,
                status,
            } => Self::ToolCall(ToolCallMessage {
                agent_id,
                tool_call_id,
                tool_name,
                args,
                result,
                status: status.into(),
            }),
            D::Subagent {
                agent_id,
                subagent_name,
                result,
                status,
            } => Self::Subagent(SubagentMessage {
                agent_id,
                subagent_name,
                result,
                status: status.into(),
            }),
            D::Error { code, message } => Self::Error(ErrorMessage { code, message }),
            D::Warning { code, message } => Self::Warning(WarningMessage { code, message }),
        }
    }
}

/// One run of an agent: an immutable snapshot linked to its parent like a commit.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct Session {
    pub session_id: String,
    /// The session this one continues; absent for a conversation's first session.
    pub parent_session_id: Option<String>,
    pub conversation_id: String,
    pub session_type: SessionType,
    pub transport: Transport,
    /// For async subagent sessions: the session that spawned it.
    pub spawned_by: Option<String>,
    /// For async subagent sessions: the name it was dispatched under, which its mailbox
    /// messages carry.
    pub subagent_name: Option<String>,
    pub preset_id: Option<String>,
    pub status: SessionStatus,
    pub run_summary: Option<RunSummary>,
    /// Deferred tool calls (status `awaiting_tool_results`); omitted when empty.
    #[oai(default, skip_serializing_if_is_empty)]
    pub pending_tool_calls: Vec<PendingToolCall>,
    /// Why the session failed, when it did.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The transcript of the run, when requested.
    pub display_messages: Option<Vec<DisplayMessage>>,
}

impl From<ports::SessionRecord> for Session {
    fn from(s: ports::SessionRecord) -> Self {
        Self {
            session_id: s.session_id.into(),
            parent_session_id: s.parent_session_id.map(Into::into),
            conversation_id: s.conversation_id.into(),
            session_type: s.kind.session_type().into(),
            transport: s.transport.into(),
            spawned_by: s.kind.spawned_by().map(ToString::to_string),
            subagent_name: s.kind.subagent_name().map(str::to_owned),
            preset_id: s.preset_id.map(Into::into),
            status: s.status.into(),
            run_summary: s.run_summary.map(Into::into),
            pending_tool_calls: s.pending_tool_calls.into_iter().map(Into::into).collect(),
            error: s.error,
            created_at: s.created_at,
            updated_at: s.updated_at,
            display_messages: None,
        }
    }
}

impl Session {
    /// Adds the transcript.
    pub fn with_display_messages(mut self, messages: Vec<ports::DisplayMessage>) -> Self {
        self.display_messages = Some(messages.into_iter().map(Into::into).collect());
        self
    }
}

/// Whether a conversation is in use: `active` or `archived`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[oai(rename_all = "snake_case")]
pub enum ConversationStatus {
    Active,
    Archived,
}

impl From<ports::ConversationStatus> for ConversationStatus {
    fn from(s: ports::ConversationStatus) -> Self {
        match s {
            ports::ConversationStatus::Active => Self::Active,
            ports::ConversationStatus::Archived => Self::Archived,
        }
    }
}

impl From<ConversationStatus> for ports::ConversationStatus {
    fn from(s: ConversationStatus) -> Self {
        match s {
            ConversationStatus::Active => Self::Active,
            ConversationStatus::Archived => Self::Archived,
        }
    }
}

/// A conversation: the user-facing thread over a chain of sessions. Its id is the id of
/// its root (or fork) session.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct Conversation {
    pub conversation_id: String,
    pub title: Option<String>,
    /// The preset runs use when they name none.
    pub default_preset_id: Option<String>,
    pub status: ConversationStatus,
    /// The caller's string pairs (`conversations/list?metadata.<key>=<value>` finds it).
    pub metadata: std::collections::BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// Last activity; lists are ordered by it, newest first.
    pub updated_at: DateTime<Utc>,
}

impl From<ports::Conversation> for Conversation {
    fn from(c: ports::Conversation) -> Self {
        Self {
            conversation_id: c.conversation_id.into(),
            title: c.title,
            default_preset_id: c.default_preset_id.map(Into::into),
            status: c.status.into(),
            metadata: c.metadata,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use poem_openapi::{
        registry::Registry,
        types::{ParseFromJSON, ToJSON, Type},
    };
    use ports::from_micros;

    use super::*;
    use crate::api::dto::events::tests::normalized;

    fn display_messages(full: bool) -> Vec<ports::DisplayMessage> {
        use ports::{DisplayMessage as D, ToolCallStatus as S};
        let opt = |s: &str| full.then(|| s.to_owned());
        vec![
            D::User { text: "hi".into() },
            D::AssistantText {
                agent_id: "main".into(),
                text: "hello".into(),
            },
            D::Thinking {
                agent_id: "main".into(),
                text: "hmm".into(),
            },
            D::ToolCall {
                agent_id: "main".into(),
                tool_call_id: "t1".into(),
                tool_name: "grep".into(),
                args: "{\"pattern\":\"x\"}".into(),
                result: opt("x.rs:1"),
                status: if full { S::Success } else { S::Pending },
            },
            D::Subagent {
                agent_id: "explorer-1".into(),
                subagent_name: "explorer".into(),
                result: opt("done"),
                status: if full { S::Error } else { S::Cancelled },
            },
            D::Error {
                code: "model_error".into(),
                message: "boom".into(),
            },
            D::Warning {
                code: "sandbox_off".into(),
                message: "careful".into(),
            },
        ]
    }

    /// Fails to compile when a variant is added, so [`display_messages`] is kept complete.
    fn kind(m: &ports::DisplayMessage) -> &'static str {
        use ports::DisplayMessage as D;
        match m {
            D::User { .. } => "user",
            D::AssistantText { .. } => "assistant_text",
            D::Thinking { .. } => "thinking",
            D::ToolCall { .. } => "tool_call",
            D::Subagent { .. } => "subagent",
            D::Error { .. } => "error",
            D::Warning { .. } => "warning",
        }
    }

    #[test]
    fn display_messages_parse_and_serialise_like_the_domain_type() {
        for full in [true, false] {
            for m in display_messages(full) {
                let json = serde_json::to_value(&m).unwrap();
                assert_eq!(json["kind"], kind(&m));
                let parsed = DisplayMessage::parse_from_json(Some(json.clone()))
                    .unwrap_or_else(|e| panic!("{json}: {}", e.into_message()));
                assert_eq!(parsed.to_json().unwrap(), json);
                assert_eq!(DisplayMessage::from(m).to_json().unwrap(), json);
            }
        }
    }

    #[test]
    fn display_message_mapping_matches_the_domain_kinds() {
        let mut registry = Registry::new();
        DisplayMessage::register(&mut registry);
        let mapped: BTreeSet<String> = registry.schemas["DisplayMessage"]
            .discriminator
            .as_ref()
            .unwrap()
            .mapping
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        let domain: BTreeSet<String> = display_messages(true)
            .iter()
            .map(|m| kind(m).to_owned())
            .collect();
        assert_eq!(mapped, domain);
    }

    fn session(full: bool) -> ports::SessionRecord {
        let opt = |s: &str| full.then(|| s.to_owned());
        ports::SessionRecord {
            session_id: "s2".into(),
            parent_session_id: opt("s1").map(Into::into),
            conversation_id: "s1".into(),
            kind: if full {
                ports::SessionKind::AsyncSubagent {
                    spawned_by: "s0".into(),
                    subagent_name: "scout".into(),
                }
            } else {
                ports::SessionKind::Agent
            },
            transport: if full {
                ports::Transport::Stream
            } else {
                ports::Transport::Sse
            },
            preset_id: opt("p").map(Into::into),
            status: if full {
                ports::SessionStatus::AwaitingToolResults
            } else {
                ports::SessionStatus::Created
            },
            run_summary: full.then_some(ports::RunSummary {
                duration_ms: 5,
                usage: ports::Usage {
                    total_tokens: 3,
                    prompt_tokens: 2,
                    completion_tokens: 1,
                    model_requests: 1,
                    ..Default::default()
                },
                ..Default::default()
            }),
            pending_tool_calls: if full {
                vec![ports::PendingToolCall {
                    tool_call_id: "t".into(),
                    tool_name: "shell".into(),
                    args: serde_json::json!({"cmd": "rm -rf /tmp/x"}),
                    kind: ports::PendingKind::Approval,
                }]
            } else {
                vec![]
            },
            error: opt("it broke"),
            created_at: from_micros(1_764_000_000_123_456),
            updated_at: from_micros(1_764_000_001_000_001),
        }
    }

    #[test]
    fn session_dto_says_what_the_record_holds_and_parses_back() {
        let expected = [
            serde_json::json!({
                "session_id": "s2", "parent_session_id": "s1", "conversation_id": "s1",
                "session_type": "async_subagent", "transport": "stream",
                "spawned_by": "s0", "subagent_name": "scout", "preset_id": "p",
                "status": "awaiting_tool_results",
                "run_summary": {"duration_ms": 5, "usage": {
                    "total_tokens": 3, "prompt_tokens": 2, "completion_tokens": 1,
                    "model_requests": 1, "cache_read_tokens": 0, "cache_write_tokens": 0}},
                "pending_tool_calls": [{"tool_call_id": "t", "tool_name": "shell",
                    "args": {"cmd": "rm -rf /tmp/x"}, "kind": "approval"}],
                "error": "it broke",
                "created_at": 1_764_000_000_123_456_i64, "updated_at": 1_764_000_001_000_001_i64,
            }),
            // Optional fields are omitted, never null.
            serde_json::json!({
                "session_id": "s2", "conversation_id": "s1", "session_type": "agent",
                "transport": "sse", "status": "created",
                "created_at": 1_764_000_000_123_456_i64, "updated_at": 1_764_000_001_000_001_i64,
            }),
        ];
        for (full, expected) in [true, false].into_iter().zip(expected) {
            let dto = Session::from(session(full));
            let json = dto.to_json().unwrap();
            assert_eq!(normalized(json.clone()), expected);
            assert_eq!(Session::parse_from_json(Some(json)).unwrap(), dto);
        }
    }

    #[test]
    fn session_dto_carries_display_messages_when_asked() {
        let dto = Session::from(session(false)).with_display_messages(display_messages(true));
        let json = dto.to_json().unwrap();
        let expected: Vec<serde_json::Value> = display_messages(true)
            .iter()
            .map(|m| serde_json::to_value(m).unwrap())
            .collect();
        assert_eq!(json["display_messages"], serde_json::json!(expected));
        assert_eq!(Session::parse_from_json(Some(json)).unwrap(), dto);
    }

    #[test]
    fn conversation_dto_serialises_like_the_domain_type() {
        for full in [true, false] {
            let conversation = ports::Conversation {
                conversation_id: "c".into(),
                title: full.then(|| "Title".into()),
                default_preset_id: full.then(|| "p".into()),
                status: if full {
                    ports::ConversationStatus::Archived
                } else {
                    ports::ConversationStatus::Active
                },
                created_at: from_micros(1_764_000_000_000_000),
                updated_at: from_micros(1_764_000_000_999_999),
                metadata: [("channel".to_owned(), "C1".to_owned())].into(),
            };
            let domain = serde_json::to_value(&conversation).unwrap();
            let dto = Conversation::from(conversation);
            assert_eq!(
                normalized(dto.to_json().unwrap()),
                normalized(domain.clone())
            );
            assert_eq!(Conversation::parse_from_json(Some(domain)).unwrap(), dto);
        }
        for s in [
            ports::ConversationStatus::Active,
            ports::ConversationStatus::Archived,
        ] {
            assert_eq!(
                ports::ConversationStatus::from(ConversationStatus::from(s)),
                s
            );
        }
    }
}
