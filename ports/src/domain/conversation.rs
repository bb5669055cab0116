//! Conversations: the user-facing thread that groups a chain of sessions (spec 01).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ConversationId, PresetId, Timestamp};

/// A conversation's metadata: a flat string map (keys sorted).
pub type Metadata = BTreeMap<String, String>;

/// Whether a conversation is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    #[default]
    Active,
    Archived,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// A conversation row. Its id is the id of its root (or fork) session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub conversation_id: ConversationId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_preset_id: Option<PresetId>,
    pub status: ConversationStatus,
    #[serde(default)]
    pub metadata: Metadata,
    pub created_at: Timestamp,
    /// Last activity; lists are ordered by it, newest first.
    pub updated_at: Timestamp,
}

/// Editable fields; `None` leaves a field unchanged, `Some(None)` clears a nullable one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConversationPatch {
    pub title: Option<Option<String>>,
    pub default_preset_id: Option<Option<PresetId>>,
    pub status: Option<ConversationStatus>,
    /// Replaces the whole map.
    pub metadata: Option<Metadata>,
}

/// Which conversations a list returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConversationFilter {
    pub status: Option<ConversationStatus>,
    /// Every pair must be in the conversation's metadata.
    pub metadata: Vec<(String, String)>,
}

/// Paging for list queries; adapters receive already-clamped values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

impl Page {
    /// Largest page any list endpoint serves.
    pub const MAX_LIMIT: u32 = 100;

    /// Clamps `limit` into `1..=MAX_LIMIT`.
    pub fn clamped(limit: u32, offset: u32) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            offset,
        }
    }
}
