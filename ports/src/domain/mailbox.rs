//! The mailbox: outcomes of async subagents waiting to be fired into the conversation (spec 05).

use serde::{Deserialize, Serialize};

use super::{ConversationId, SessionId, Timestamp};

/// What kind of outcome a mailbox message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailboxSource {
    SubagentResult,
    SubagentFailed,
}

impl MailboxSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubagentResult => "subagent_result",
            Self::SubagentFailed => "subagent_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "subagent_result" => Some(Self::SubagentResult),
            "subagent_failed" => Some(Self::SubagentFailed),
            _ => None,
        }
    }
}

/// One message. It only references its source session; the text is rendered from that
/// session's display messages when fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxMessage {
    pub message_id: String,
    pub conversation_id: ConversationId,
    pub source_session_id: SessionId,
    pub source_type: MailboxSource,
    pub subagent_name: String,
    pub created_at: Timestamp,
    /// The session that consumed it; `None` while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_to: Option<SessionId>,
}
