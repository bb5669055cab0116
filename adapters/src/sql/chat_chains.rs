//! `ChatChainRepo` on SQL: one row per chain hash, replaced by an upsert when the same
//! chain is recorded again (a retried request).

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use ports::{ChatChainRepo, ConversationId, SessionId, StorageError};

use super::{SqlStorage, db_err, schema::chat_chains, with_conn};

#[async_trait]
impl ChatChainRepo for SqlStorage {
    async fn remember_chain(
        &self,
        hash: &str,
        session_id: &SessionId,
        conversation_id: &ConversationId,
    ) -> Result<(), StorageError> {
        let (session_id, conversation_id) = (session_id.as_str(), conversation_id.as_str());
        with_conn!(self, write, |c| {
            diesel::insert_into(chat_chains::table)
                .values((
                    chat_chains::chain_hash.eq(hash),
                    chat_chains::session_id.eq(session_id),
                    chat_chains::conversation_id.eq(conversation_id),
                ))
                .on_conflict(chat_chains::chain_hash)
                .do_update()
                .set((
                    chat_chains::session_id.eq(excluded(chat_chains::session_id)),
                    chat_chains::conversation_id.eq(excluded(chat_chains::conversation_id)),
                ))
                .execute(c)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    async fn find_chain(
        &self,
        hash: &str,
    ) -> Result<Option<(SessionId, ConversationId)>, StorageError> {
        let row: Option<(String, String)> = with_conn!(self, read, |c| {
            chat_chains::table
                .find(hash)
                .select((chat_chains::session_id, chat_chains::conversation_id))
                .first(c)
                .await
                .optional()
                .map_err(db_err)?
        });
        Ok(row.map(|(s, c)| (SessionId::from(s), ConversationId::from(c))))
    }
}
