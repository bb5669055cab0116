//! `ConversationRepo` on SQL.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ports::ConversationId;
use ports::{
    Conversation, ConversationPatch, ConversationRepo, ConversationStatus, Page, StorageError,
    Timestamp,
};

use super::{
    SqlStorage, TxError, db_err,
    rows::{self, ConversationRow},
    schema::conversations,
    with_conn,
};

#[async_trait]
impl ConversationRepo for SqlStorage {
    async fn get_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, StorageError> {
        let conversation_id = conversation_id.as_str();
        let row: ConversationRow = with_conn!(self, read, |c| {
            conversations::table
                .find(conversation_id)
                .select(ConversationRow::as_select())
                .first(c)
                .await
                .map_err(db_err)?
        });
        row.into_domain()
    }

    async fn list_conversations(
        &self,
        status: Option<ConversationStatus>,
        page: Page,
    ) -> Result<Vec<Conversation>, StorageError> {
        let found: Vec<ConversationRow> = with_conn!(self, read, |c| {
            let mut query = conversations::table
                .select(ConversationRow::as_select())
                .order((
                    conversations::updated_at.desc(),
                    conversations::conversation_id.desc(),
                ))
                .limit(i64::from(page.limit))
                .offset(i64::from(page.offset))
                .into_boxed();
            if let Some(status) = status {
                query = query.filter(conversations::status.eq(status.as_str()));
            }
            query.load(c).await.map_err(db_err)?
        });
        rows::all(found, ConversationRow::into_domain)
    }

    async fn update_conversation(
        &self,
        conversation_id: &ConversationId,
        patch: &ConversationPatch,
        at: Timestamp,
    ) -> Result<Conversation, StorageError> {
        let conversation_id = conversation_id.as_str();
        let at = at.timestamp_micros();
        let row: ConversationRow = with_conn!(self, write, |c| {
            c.transaction::<_, TxError, _>(async |c| {
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
                Ok(current)
            })
            .await
            .map_err(|TxError(e)| e)?
        });
        row.into_domain()
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
