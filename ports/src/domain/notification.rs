//! Notifications: what happened to sessions and conversations, for clients that do not
//! follow every run (a page, an IM gateway) and for webhooks.

use serde::{Deserialize, Serialize};

use super::{ConversationId, SessionId, SessionStatus, SessionType, Timestamp};

/// What a notification tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A session started running.
    SessionStarted,
    /// A session ended, with its final status.
    SessionFinished,
    /// A session ended waiting for approval or tool results from its caller.
    AwaitingApproval,
    /// An async subagent's outcome arrived in its conversation's mailbox.
    MailboxUpdated,
    /// A conversation has a new latest session, or was edited (title, default preset).
    ConversationUpdated,
}

impl NotificationKind {
    pub const ALL: [Self; 5] = [
        Self::SessionStarted,
        Self::SessionFinished,
        Self::AwaitingApproval,
        Self::MailboxUpdated,
        Self::ConversationUpdated,
    ];

    /// The wire spelling (the SSE `event:` and the webhooks' filter).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionStarted => "session_started",
            Self::SessionFinished => "session_finished",
            Self::AwaitingApproval => "awaiting_approval",
            Self::MailboxUpdated => "mailbox_updated",
            Self::ConversationUpdated => "conversation_updated",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A notification before the log numbers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNotification {
    pub kind: NotificationKind,
    pub at: Timestamp,
    pub conversation_id: ConversationId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_type: Option<SessionType>,
    /// `session_finished`, `awaiting_approval`: the session's final status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SessionStatus>,
    /// `mailbox_updated`: the async subagent whose outcome arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subagent: Option<String>,
}

/// A notification in the log: its id orders it and is the SSE `id:` a client resumes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: u64,
    #[serde(flatten)]
    pub body: NewNotification,
}
