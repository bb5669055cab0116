//! `ConversationRepo` on SQL.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ports::{
    Conversation, ConversationFilter, ConversationPatch, ConversationRepo, ConversationStatus,
    Page, StorageError, Timestamp,
};
use ports::{ConversationId, SessionRecord, SessionStatus};

use super::{
    SqlStorage, TxError, db_err,
    rows::{ConversationRow, MetadataRow, SessionRow},
    schema::{
        chat_chains, conversation_metadata, conversations, idempotency_keys, mailbox, sessions,
    },
    with_conn,
};

/// The metadata rows of the conversations `$ids`.
macro_rules! load_metadata {
    ($c:expr, $ids:expr) => {
        conversation_metadata::table
            .filter(conversation_metadata::conversation_id.eq_any($ids))
            .select(MetadataRow::as_select())
            .load::<MetadataRow>($c)
            .await
    };
}

/// Replaces conversation `$id`'s metadata with `$rows` (inside a transaction).
macro_rules! replace_metadata {
    ($c:expr, $id:expr, $rows:expr) => {{
        diesel::delete(
            conversation_metadata::table.filter(conversation_metadata::conversation_id.eq($id)),
        )
        .execute($c)
        .await?;
        for row in $rows {
            diesel::insert_into(conversation_metadata::table)
                .values(row)
                .execute($c)
                .await?;
        }
    }};
}

/// Locks conversation `$id`'s row for the rest of the transaction and returns its status
/// (`NotFound` when absent). A no-op UPDATE takes the row lock on PostgreSQL (SQLite has
/// one writer anyway), so archiving, deleting and adding a session to one conversation
/// are serialized: none of them acts on a status another is changing.
macro_rules! lock_conversation {
    ($c:expr, $id:expr) => {{
        let locked = diesel::update(conversations::table.find($id))
            .set(conversations::status.eq(conversations::status))
            .execute($c)
            .await?;
        if locked == 0 {
            return Err(StorageError::NotFound.into());
        }
        let status: String = conversations::table
            .find($id)
            .select(conversations::status)
            .first($c)
            .await?;
        status
    }};
}
pub(super) use lock_conversation;

/// The first `created` session of conversation `$id`, as `ConversationBusy`.
macro_rules! refuse_if_running {
    ($c:expr, $id:expr) => {{
        let running: Option<String> = sessions::table
            .filter(sessions::conversation_id.eq($id))
            .filter(sessions::status.eq(SessionStatus::Created.as_str()))
            .select(sessions::session_id)
            .first($c)
            .await
            .optional()?;
        if let Some(session_id) = running {
            return Err(StorageError::ConversationBusy {
                session_id: session_id.into(),
            }
            .into());
        }
    }};
}

#[async_trait]
impl ConversationRepo for SqlStorage {
    async fn get_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, StorageError> {
        let conversation_id = conversation_id.as_str();
        let (row, metadata): (ConversationRow, Vec<MetadataRow>) = with_conn!(self, read, |c| {
            let row = conversations::table
                .find(conversation_id)
                .select(ConversationRow::as_select())
                .first(c)
                .await
                .map_err(db_err)?;
            (row, load_metadata!(c, [conversation_id]).map_err(db_err)?)
        });
        row.into_domain(&metadata)
    }

    async fn list_conversations(
        &self,
        filter: &ConversationFilter,
        page: Page,
    ) -> Result<Vec<Conversation>, StorageError> {
        let (found, metadata): (Vec<ConversationRow>, Vec<MetadataRow>) =
            with_conn!(self, read, |c| {
                let mut query = conversations::table
                    .select(ConversationRow::as_select())
                    .order((
                        conversations::updated_at.desc(),
                        conversations::conversation_id.desc(),
                    ))
                    .limit(i64::from(page.limit))
                    .offset(i64::from(page.offset))
                    .into_boxed();
                if let Some(status) = filter.status {
                    query = query.filter(conversations::status.eq(status.as_str()));
                }
                for (key, value) in &filter.metadata {
                    query = query.filter(diesel::dsl::exists(
                        conversation_metadata::table
                            .filter(
                                conversation_metadata::conversation_id
                                    .eq(conversations::conversation_id),
                            )
                            .filter(conversation_metadata::key.eq(key))
                            .filter(conversation_metadata::value.eq(value)),
                    ));
                }
                let found: Vec<ConversationRow> = query.load(c).await.map_err(db_err)?;
                let ids: Vec<&str> = found.iter().map(|r| r.conversation_id.as_str()).collect();
                let metadata = load_metadata!(c, ids).map_err(db_err)?;
                (found, metadata)
            });
        found
            .into_iter()
            .map(|row| row.into_domain(&metadata))
            .collect()
    }

    async fn update_conversation(
        &self,
        conversation_id: &ConversationId,
        patch: &ConversationPatch,
        at: Timestamp,
    ) -> Result<Conversation, StorageError> {
        let conversation_id = conversation_id.as_str();
        let at = at.timestamp_micros();
        let (row, metadata): (ConversationRow, Vec<MetadataRow>) = with_conn!(self, write, |c| {
            c.transaction::<_, TxError, _>(async |c| {
                let status = lock_conversation!(c, conversation_id);
                let archived = ConversationStatus::Archived.as_str();
                let of_it = sessions::table.filter(sessions::conversation_id.eq(conversation_id));
                match patch.status {
                    // Unarchiving gives each session back the status it had.
                    Some(ConversationStatus::Active) if status == archived => {
                        diesel::update(of_it.filter(sessions::status_before_archive.is_not_null()))
                            .set((
                                sessions::status
                                    .eq(sessions::status_before_archive.assume_not_null()),
                                sessions::status_before_archive.eq(None::<String>),
                                sessions::updated_at.eq(at),
                            ))
                            .execute(c)
                            .await?;
                    }
                    Some(ConversationStatus::Archived) if status != archived => {
                        refuse_if_running!(c, conversation_id);
                        diesel::update(
                            of_it.filter(sessions::status.ne(SessionStatus::Archived.as_str())),
                        )
                        .set((
                            sessions::status_before_archive.eq(sessions::status.nullable()),
                            sessions::status.eq(SessionStatus::Archived.as_str()),
                            sessions::updated_at.eq(at),
                        ))
                        .execute(c)
                        .await?;
                    }
                    _ => {}
                }
                let target = conversations::table.find(conversation_id);
                let mut current: ConversationRow =
                    target.select(ConversationRow::as_select()).first(c).await?;
                if let Some(title) = &patch.title {
                    current.title = title.clone();
                }
                if let Some(preset) = &patch.default_preset_id {
                    current.default_preset_id = preset.clone().map(String::from);
                }
                if let Some(status) = patch.status {
                    current.status = status.as_str().to_owned();
                }
                current.updated_at = current.updated_at.max(at);
                diesel::update(target)
                    .set((
                        conversations::title.eq(&current.title),
                        conversations::default_preset_id.eq(&current.default_preset_id),
                        conversations::status.eq(&current.status),
                        conversations::updated_at.eq(current.updated_at),
                    ))
                    .execute(c)
                    .await?;
                if let Some(metadata) = &patch.metadata {
                    replace_metadata!(
                        c,
                        conversation_id,
                        MetadataRow::of(conversation_id, metadata)
                    );
                }
                let metadata = load_metadata!(c, [conversation_id])?;
                Ok((current, metadata))
            })
            .await
            .map_err(|TxError(e)| e)?
        });
        row.into_domain(&metadata)
    }

    async fn delete_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Vec<SessionRecord>, StorageError> {
        let id = conversation_id.as_str();
        let removed: Vec<SessionRow> = with_conn!(self, write, |c| {
            c.transaction::<_, TxError, _>(async |c| {
                lock_conversation!(c, id);
                refuse_if_running!(c, id);
                let removed: Vec<SessionRow> = sessions::table
                    .filter(sessions::conversation_id.eq(id))
                    .select(SessionRow::as_select())
                    .load(c)
                    .await?;
                diesel::delete(mailbox::table.filter(mailbox::conversation_id.eq(id)))
                    .execute(c)
                    .await?;
                diesel::delete(
                    conversation_metadata::table
                        .filter(conversation_metadata::conversation_id.eq(id)),
                )
                .execute(c)
                .await?;
                diesel::delete(chat_chains::table.filter(chat_chains::conversation_id.eq(id)))
                    .execute(c)
                    .await?;
                diesel::delete(
                    idempotency_keys::table.filter(idempotency_keys::conversation_id.eq(id)),
                )
                .execute(c)
                .await?;
                diesel::delete(sessions::table.filter(sessions::conversation_id.eq(id)))
                    .execute(c)
                    .await?;
                diesel::delete(conversations::table.find(id))
                    .execute(c)
                    .await?;
                Ok(removed)
            })
            .await
            .map_err(|TxError(e)| e)?
        });
        removed.into_iter().map(SessionRow::into_domain).collect()
    }

    async fn archived_before(
        &self,
        cutoff: Timestamp,
        limit: u32,
    ) -> Result<Vec<ConversationId>, StorageError> {
        let ids: Vec<String> = with_conn!(self, read, |c| {
            conversations::table
                .filter(conversations::status.eq(ConversationStatus::Archived.as_str()))
                .filter(conversations::updated_at.lt(cutoff.timestamp_micros()))
                .order((
                    conversations::updated_at.asc(),
                    conversations::conversation_id.asc(),
                ))
                .limit(i64::from(limit))
                .select(conversations::conversation_id)
                .load(c)
                .await
                .map_err(db_err)?
        });
        Ok(ids.into_iter().map(ConversationId::from).collect())
    }

    async fn touch_conversation(
        &self,
        conversation_id: &ConversationId,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let conversation_id = conversation_id.as_str();
        let at = at.timestamp_micros();
        with_conn!(self, write, |c| {
            let exists: i64 = conversations::table
                .find(conversation_id)
                .count()
                .get_result(c)
                .await
                .map_err(db_err)?;
            if exists == 0 {
                return Err(StorageError::NotFound);
            }
            diesel::update(
                conversations::table
                    .find(conversation_id)
                    .filter(conversations::updated_at.lt(at)),
            )
            .set(conversations::updated_at.eq(at))
            .execute(c)
            .await
            .map_err(db_err)?;
            Ok(())
        })
    }
}
