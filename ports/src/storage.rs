//! Durable, queryable metadata: presets, conversations, the session index and the mailbox.
//!
//! One trait per aggregate. Each method is one atomic unit: it either fully happens or
//! leaves nothing behind, and no transaction handle crosses the port.

use async_trait::async_trait;

use crate::{
    BoxError, Conversation, ConversationFilter, ConversationId, ConversationPatch, MailboxMessage,
    NewNotification, Notification, Page, Preset, PresetId, SessionId, SessionOutcome,
    SessionRecord, SessionType, Timestamp,
};

/// Errors of every storage port, sorted by what the caller decides.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The addressed row does not exist.
    #[error("not found")]
    NotFound,
    /// A row with this id already exists.
    #[error("already exists")]
    AlreadyExists,
    /// The preset is still referenced (an active conversation's default, or a running session).
    #[error("preset is in use")]
    PresetInUse,
    /// The conversation already has a running agent session, `session_id`.
    #[error("conversation is busy with session {session_id}")]
    ConversationBusy { session_id: SessionId },
    /// The conversation is archived: it takes no new sessions until unarchived.
    #[error("the conversation is archived; unarchive it to run it")]
    ConversationArchived,
    /// The row is not in a state that allows the change (e.g. finishing a finished session).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend cannot be reached; retrying later may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(BoxError),
    /// Anything else, including stored data that no longer decodes.
    #[error("storage error: {0}")]
    Other(BoxError),
}

/// Agent presets.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PresetRepo: Send + Sync {
    /// Inserts a preset.
    /// When `preset.is_default`, every other preset MUST lose the flag in the same unit, so
    /// at most one default exists at any time.
    /// # Errors
    /// `AlreadyExists` when the id is taken.
    async fn create_preset(&self, preset: &Preset) -> Result<(), StorageError>;

    /// Replaces a stored preset wholesale (same default rule as `create_preset`).
    /// `created_at` MUST stay as stored.
    /// # Errors
    /// `NotFound` when no such preset exists.
    async fn update_preset(&self, preset: &Preset) -> Result<(), StorageError>;

    /// # Errors
    /// `NotFound` when no such preset exists.
    async fn get_preset(&self, preset_id: &PresetId) -> Result<Preset, StorageError>;

    /// All presets ordered by `preset_id`.
    async fn list_presets(&self) -> Result<Vec<Preset>, StorageError>;

    /// The default preset, if one is marked.
    async fn default_preset(&self) -> Result<Option<Preset>, StorageError>;

    /// Deletes a preset unless an active conversation has it as default or a running
    /// (`created`) session uses it; the check and the delete are one unit.
    /// # Errors
    /// `NotFound`, or `PresetInUse`.
    async fn delete_preset(&self, preset_id: &PresetId) -> Result<(), StorageError>;

    /// True when the table holds no preset at all (first start).
    async fn presets_empty(&self) -> Result<bool, StorageError>;
}

/// The database as a whole, apart from any one table: what health reports.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Database: Send + Sync {
    /// Reaches the database: `Ok` when a round trip succeeds.
    async fn health(&self) -> Result<(), StorageError>;
}

/// The notification log: bounded (the oldest are dropped past a cap) and persisted, so a
/// client that reconnects with the last id it saw gets what it missed.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait NotificationRepo: Send + Sync {
    /// Appends `batch` in order and returns its ids, each greater than every id before it
    /// (ids are never reused); keeps only the newest `keep` notifications. One call for
    /// whatever queued up meanwhile: under load, runs ending together cost one write, not
    /// one per notification.
    async fn append_notifications(
        &self,
        batch: &[NewNotification],
        keep: u64,
    ) -> Result<Vec<u64>, StorageError>;

    /// The notifications after id `after`, oldest first, at most `limit`.
    async fn notifications_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Notification>, StorageError>;
}

/// Conversations.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ConversationRepo: Send + Sync {
    /// # Errors
    /// `NotFound`.
    async fn get_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, StorageError>;

    /// Conversations newest activity first (ties broken by id, descending), only those
    /// the filter admits.
    async fn list_conversations(
        &self,
        filter: &ConversationFilter,
        page: Page,
    ) -> Result<Vec<Conversation>, StorageError>;

    /// Removes the conversation with its sessions, mailbox, metadata, chat chains and
    /// retry keys at once; returns the removed sessions (their state-store objects and
    /// uploads are the caller's to remove).
    ///
    /// # Errors
    /// `NotFound`; `ConversationBusy` while any of its sessions runs (nothing removed).
    async fn delete_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Vec<SessionRecord>, StorageError>;

    /// Applies a patch and sets `updated_at = at`; returns the updated row. Archiving
    /// (`status: archived` on an active conversation) archives its sessions in the same
    /// unit, keeping the status each had; unarchiving gives it back.
    /// # Errors
    /// `NotFound`; `ConversationBusy` when archiving while a session runs (nothing
    /// changed).
    async fn update_conversation(
        &self,
        conversation_id: &ConversationId,
        patch: &ConversationPatch,
        at: Timestamp,
    ) -> Result<Conversation, StorageError>;

    /// Archived conversations untouched since before `cutoff`, oldest first, at most
    /// `limit` (retention deletes them).
    async fn archived_before(
        &self,
        cutoff: Timestamp,
        limit: u32,
    ) -> Result<Vec<ConversationId>, StorageError>;

    /// Records activity: `updated_at = at` (never moves backwards).
    /// # Errors
    /// `NotFound`.
    async fn touch_conversation(
        &self,
        conversation_id: &ConversationId,
        at: Timestamp,
    ) -> Result<(), StorageError>;
}

/// The session index.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SessionRepo: Send + Sync {
    /// Inserts a `created` session, and its conversation first when `new_conversation` is
    /// given (root and fork), in one unit.
    /// An `agent` session MUST NOT be inserted while another `agent` session of the same
    /// conversation is `created`; this holds under concurrent calls.
    /// # Errors
    /// `ConversationBusy` with the running session's id; `AlreadyExists` for a taken id;
    /// `NotFound` when continuing a conversation that does not exist;
    /// `ConversationArchived` when it is archived.
    async fn create_session(
        &self,
        session: &SessionRecord,
        new_conversation: Option<Conversation>,
    ) -> Result<(), StorageError>;

    /// # Errors
    /// `NotFound`.
    async fn get_session(&self, session_id: &SessionId) -> Result<SessionRecord, StorageError>;

    /// Moves a `created` session to its final state and touches its conversation, in one unit.
    /// # Errors
    /// `NotFound`; `Conflict` when the session is no longer `created`.
    async fn finish_session(
        &self,
        session_id: &SessionId,
        outcome: &SessionOutcome,
    ) -> Result<(), StorageError>;

    /// Sessions of a conversation, oldest first, optionally only one type.
    async fn list_sessions(
        &self,
        conversation_id: &ConversationId,
        session_type: Option<SessionType>,
        page: Page,
    ) -> Result<Vec<SessionRecord>, StorageError>;

    /// The newest `agent` session of the conversation that is `committed` or
    /// `awaiting_tool_results` (the parent of a continue).
    async fn latest_continuable(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Option<SessionRecord>, StorageError>;

    /// The newest session of the conversation of `session_type`, whatever its status.
    async fn latest_session(
        &self,
        conversation_id: &ConversationId,
        session_type: SessionType,
    ) -> Result<Option<SessionRecord>, StorageError>;

    /// The `created` agent session of the conversation, if any.
    async fn running_agent_session(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Option<SessionRecord>, StorageError>;

    /// Marks every `created` session `failed` with `reason` (startup recovery); returns their ids.
    async fn fail_orphans(
        &self,
        reason: &str,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StorageError>;
}

/// The mailbox of async-subagent outcomes.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait MailboxRepo: Send + Sync {
    /// # Errors
    /// `AlreadyExists` for a taken message id.
    async fn post_message(&self, message: &MailboxMessage) -> Result<(), StorageError>;

    /// All messages of a conversation, oldest first, delivered or not.
    async fn list_messages(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Vec<MailboxMessage>, StorageError>;

    /// How many messages wait undelivered.
    async fn pending_count(&self, conversation_id: &ConversationId) -> Result<u64, StorageError>;

    /// Atomically marks every undelivered message of the conversation delivered to
    /// `session_id` and returns them, oldest first. Concurrent calls never return the same
    /// message twice.
    async fn take_undelivered(
        &self,
        conversation_id: &ConversationId,
        session_id: &SessionId,
    ) -> Result<Vec<MailboxMessage>, StorageError>;

    /// Returns messages delivered to `session_id` to the pending state (a continuation that
    /// could not start); returns how many.
    async fn release_delivered(&self, session_id: &SessionId) -> Result<u64, StorageError>;
}

/// What a retry key holds (spec 06, safe retries): the request that first used it and the
/// run that request started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: String,
    /// What the first request asked for (its operation and body), as the caller hashed it.
    pub fingerprint: String,
    /// The run it started; `None` while that run is still being started.
    pub run: Option<(SessionId, ConversationId)>,
    pub created_at: Timestamp,
}

/// The outcome of claiming a retry key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: the caller starts the run, then settles or releases the claim.
    Claimed,
    /// An earlier request holds the key.
    Taken(IdempotencyRecord),
}

/// Retry keys of run requests, kept so a retried request finds the run it started.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait IdempotencyRepo: Send + Sync {
    /// Claims `key` for a request with `fingerprint`, after forgetting every claim made
    /// before `expired_before`. Of concurrent claims of one key exactly one is `Claimed`.
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expired_before: Timestamp,
    ) -> Result<Claim, StorageError>;

    /// The record of `key`, if any.
    async fn get_claim(&self, key: &str) -> Result<Option<IdempotencyRecord>, StorageError>;

    /// Records the run a claim started.
    async fn settle(
        &self,
        key: &str,
        session_id: &SessionId,
        conversation_id: &ConversationId,
    ) -> Result<(), StorageError>;

    /// Gives up a claim whose run could not start, so the key can be used again.
    async fn release(&self, key: &str) -> Result<(), StorageError>;
}

/// What the OpenAI-compatible surface remembers of a chat: the hash of its user/assistant
/// text chain after a session, so the next request, which resends the whole chat, finds
/// the session to go on from.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ChatChainRepo: Send + Sync {
    /// Records that the chain `hash` ends at `session_id` (a later record of the same
    /// chain replaces it).
    async fn remember_chain(
        &self,
        hash: &str,
        session_id: &SessionId,
        conversation_id: &ConversationId,
    ) -> Result<(), StorageError>;

    /// The session the chain `hash` ends at, if one was recorded.
    async fn find_chain(
        &self,
        hash: &str,
    ) -> Result<Option<(SessionId, ConversationId)>, StorageError>;
}
