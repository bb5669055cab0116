//! Row structs and their conversion to and from domain types. JSON columns are decoded
//! here; a row that no longer decodes is `StorageError::Other`, never a panic.

use diesel::prelude::*;
use ports::{
    Conversation, ConversationStatus, MailboxMessage, MailboxSource, Preset, SessionKind,
    SessionRecord, SessionStatus, SessionType, StorageError, Transport, from_micros,
};
use serde::{Serialize, de::DeserializeOwned};

use super::schema::{conversation_metadata, conversations, mailbox, presets, sessions};

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StorageError {
    StorageError::Other(format!("stored {what} does not decode: {detail}").into())
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| StorageError::Other(Box::new(e)))
}

fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StorageError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = presets, treat_none_as_null = true)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct PresetRow {
    pub preset_id: String,
    pub name: String,
    pub description: Option<String>,
    pub model: String,
    pub system_prompt: String,
    pub toolsets: String,
    pub environment: String,
    pub subagents: String,
    pub tool_config: String,
    pub mcp_servers: String,
    pub limits: String,
    pub is_default: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl PresetRow {
    pub fn from_domain(p: &Preset) -> Result<Self, StorageError> {
        Ok(Self {
            preset_id: p.preset_id.to_string(),
            name: p.name.clone(),
            description: p.description.clone(),
            model: to_json(&p.model)?,
            system_prompt: p.system_prompt.clone(),
            toolsets: to_json(&p.toolsets)?,
            environment: to_json(&p.environment)?,
            subagents: to_json(&p.subagents)?,
            tool_config: to_json(&p.tool_config)?,
            mcp_servers: to_json(&p.mcp_servers)?,
            limits: to_json(&p.limits)?,
            is_default: p.is_default,
            created_at: p.created_at.timestamp_micros(),
            updated_at: p.updated_at.timestamp_micros(),
        })
    }

    pub fn into_domain(self) -> Result<Preset, StorageError> {
        Ok(Preset {
            model: from_json("preset.model", &self.model)?,
            toolsets: from_json("preset.toolsets", &self.toolsets)?,
            environment: from_json("preset.environment", &self.environment)?,
            subagents: from_json("preset.subagents", &self.subagents)?,
            tool_config: from_json("preset.tool_config", &self.tool_config)?,
            mcp_servers: from_json("preset.mcp_servers", &self.mcp_servers)?,
            limits: from_json("preset.limits", &self.limits)?,
            preset_id: self.preset_id.into(),
            name: self.name,
            description: self.description,
            system_prompt: self.system_prompt,
            is_default: self.is_default,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = conversations)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ConversationRow {
    pub conversation_id: String,
    pub title: Option<String>,
    pub default_preset_id: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ConversationRow {
    pub fn from_domain(c: &Conversation) -> Self {
        Self {
            conversation_id: c.conversation_id.to_string(),
            title: c.title.clone(),
            default_preset_id: c.default_preset_id.clone().map(String::from),
            status: c.status.as_str().to_owned(),
            created_at: c.created_at.timestamp_micros(),
            updated_at: c.updated_at.timestamp_micros(),
        }
    }

    /// The conversation, with its metadata taken from `metadata` (rows of any conversation).
    pub fn into_domain(self, metadata: &[MetadataRow]) -> Result<Conversation, StorageError> {
        Ok(Conversation {
            status: ConversationStatus::parse(&self.status)
                .ok_or_else(|| corrupt("conversation.status", &self.status))?,
            metadata: metadata
                .iter()
                .filter(|m| m.conversation_id == self.conversation_id)
                .map(|m| (m.key.clone(), m.value.clone()))
                .collect(),
            conversation_id: self.conversation_id.into(),
            title: self.title,
            default_preset_id: self.default_preset_id.map(Into::into),
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }
}

/// One metadata pair of a conversation.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = conversation_metadata)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct MetadataRow {
    pub conversation_id: String,
    pub key: String,
    pub value: String,
}

impl MetadataRow {
    /// The rows of `metadata` for `conversation_id`.
    pub fn of(conversation_id: &str, metadata: &ports::Metadata) -> Vec<Self> {
        metadata
            .iter()
            .map(|(key, value)| Self {
                conversation_id: conversation_id.to_owned(),
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct SessionRow {
    pub session_id: String,
    pub parent_session_id: Option<String>,
    pub conversation_id: String,
    pub session_type: String,
    pub transport: String,
    pub spawned_by: Option<String>,
    pub preset_id: Option<String>,
    pub status: String,
    pub run_summary: Option<String>,
    pub pending_tool_calls: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub subagent_name: Option<String>,
}

impl SessionRow {
    pub fn from_domain(s: &SessionRecord) -> Result<Self, StorageError> {
        Ok(Self {
            session_id: s.session_id.to_string(),
            parent_session_id: s.parent_session_id.clone().map(String::from),
            conversation_id: s.conversation_id.to_string(),
            session_type: s.session_type().as_str().to_owned(),
            transport: s.transport.as_str().to_owned(),
            spawned_by: s.kind.spawned_by().map(ToString::to_string),
            subagent_name: s.kind.subagent_name().map(str::to_owned),
            preset_id: s.preset_id.clone().map(String::from),
            status: s.status.as_str().to_owned(),
            run_summary: s.run_summary.as_ref().map(to_json).transpose()?,
            pending_tool_calls: to_json(&s.pending_tool_calls)?,
            error: s.error.clone(),
            created_at: s.created_at.timestamp_micros(),
            updated_at: s.updated_at.timestamp_micros(),
        })
    }

    pub fn into_domain(self) -> Result<SessionRecord, StorageError> {
        let session_type = SessionType::parse(&self.session_type)
            .ok_or_else(|| corrupt("session.session_type", &self.session_type))?;
        let kind = match (session_type, self.spawned_by, self.subagent_name) {
            (SessionType::Agent, _, _) => SessionKind::Agent,
            (SessionType::AsyncSubagent, Some(spawned_by), Some(subagent_name)) => {
                SessionKind::AsyncSubagent {
                    spawned_by: spawned_by.into(),
                    subagent_name,
                }
            }
            (SessionType::AsyncSubagent, spawned_by, _) => {
                let missing = if spawned_by.is_none() {
                    "session.spawned_by"
                } else {
                    "session.subagent_name"
                };
                return Err(corrupt(missing, "NULL for an async subagent"));
            }
        };
        Ok(SessionRecord {
            kind,
            transport: Transport::parse(&self.transport)
                .ok_or_else(|| corrupt("session.transport", &self.transport))?,
            status: SessionStatus::parse(&self.status)
                .ok_or_else(|| corrupt("session.status", &self.status))?,
            run_summary: self
                .run_summary
                .as_deref()
                .map(|t| from_json("session.run_summary", t))
                .transpose()?,
            pending_tool_calls: from_json("session.pending_tool_calls", &self.pending_tool_calls)?,
            session_id: self.session_id.into(),
            parent_session_id: self.parent_session_id.map(Into::into),
            conversation_id: self.conversation_id.into(),
            preset_id: self.preset_id.map(Into::into),
            error: self.error,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = mailbox)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct MailboxRow {
    pub message_id: String,
    pub conversation_id: String,
    pub source_session_id: String,
    pub source_type: String,
    pub subagent_name: String,
    pub created_at: i64,
    pub delivered_to: Option<String>,
}

impl MailboxRow {
    pub fn from_domain(m: &MailboxMessage) -> Self {
        Self {
            message_id: m.message_id.clone(),
            conversation_id: m.conversation_id.to_string(),
            source_session_id: m.source_session_id.to_string(),
            source_type: m.source_type.as_str().to_owned(),
            subagent_name: m.subagent_name.clone(),
            created_at: m.created_at.timestamp_micros(),
            delivered_to: m.delivered_to.clone().map(String::from),
        }
    }

    pub fn into_domain(self) -> Result<MailboxMessage, StorageError> {
        Ok(MailboxMessage {
            source_type: MailboxSource::parse(&self.source_type)
                .ok_or_else(|| corrupt("mailbox.source_type", &self.source_type))?,
            message_id: self.message_id,
            conversation_id: self.conversation_id.into(),
            source_session_id: self.source_session_id.into(),
            subagent_name: self.subagent_name,
            created_at: from_micros(self.created_at),
            delivered_to: self.delivered_to.map(Into::into),
        })
    }
}

/// Converts a list of rows, failing on the first that does not decode.
pub fn all<R, T>(
    rows: Vec<R>,
    f: impl Fn(R) -> Result<T, StorageError>,
) -> Result<Vec<T>, StorageError> {
    rows.into_iter().map(f).collect()
}
