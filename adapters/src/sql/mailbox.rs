//! `MailboxRepo` on SQL. The drain is one `UPDATE … RETURNING`, atomic on both backends:
//! PostgreSQL re-checks `delivered_to IS NULL` on rows a concurrent drain just took, and
//! SQLite runs one writer at a time.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ports::{ConversationId, SessionId};
use ports::{MailboxMessage, MailboxRepo, StorageError};

use super::{
    SqlStorage, db_err,
    rows::{self, MailboxRow},
    schema::mailbox,
    with_conn,
};

#[async_trait]
impl MailboxRepo for SqlStorage {
    async fn post_message(&self, message: &MailboxMessage) -> Result<(), StorageError> {
        let row = MailboxRow::from_domain(message);
        with_conn!(self, write, |c| {
            diesel::insert_into(mailbox::table)
                .values(&row)
                .execute(c)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    async fn list_messages(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Vec<MailboxMessage>, StorageError> {
        let conversation_id = conversation_id.as_str();
        let found: Vec<MailboxRow> = with_conn!(self, read, |c| {
            mailbox::table
                .filter(mailbox::conversation_id.eq(conversation_id))
                .order((mailbox::created_at.asc(), mailbox::message_id.asc()))
                .select(MailboxRow::as_select())
                .load(c)
                .await
                .map_err(db_err)?
        });
        rows::all(found, MailboxRow::into_domain)
    }

    async fn pending_count(&self, conversation_id: &ConversationId) -> Result<u64, StorageError> {
        let conversation_id = conversation_id.as_str();
        let n: i64 = with_conn!(self, read, |c| {
            mailbox::table
                .filter(mailbox::conversation_id.eq(conversation_id))
                .filter(mailbox::delivered_to.is_null())
                .count()
                .get_result(c)
                .await
                .map_err(db_err)?
        });
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn take_undelivered(
        &self,
        conversation_id: &ConversationId,
        session_id: &SessionId,
    ) -> Result<Vec<MailboxMessage>, StorageError> {
        let conversation_id = conversation_id.as_str();
        let session_id = session_id.as_str();
        let mut taken: Vec<MailboxRow> = with_conn!(self, write, |c| {
            diesel::update(
                mailbox::table
                    .filter(mailbox::conversation_id.eq(conversation_id))
                    .filter(mailbox::delivered_to.is_null()),
            )
            .set(mailbox::delivered_to.eq(session_id))
            .returning(MailboxRow::as_returning())
            .get_results(c)
            .await
            .map_err(db_err)?
        });
        taken.sort_by(|a, b| (a.created_at, &a.message_id).cmp(&(b.created_at, &b.message_id)));
        rows::all(taken, MailboxRow::into_domain)
    }

    async fn release_delivered(&self, session_id: &SessionId) -> Result<u64, StorageError> {
        let session_id = session_id.as_str();
        let n = with_conn!(self, write, |c| {
            diesel::update(mailbox::table.filter(mailbox::delivered_to.eq(session_id)))
                .set(mailbox::delivered_to.eq(None::<String>))
                .execute(c)
                .await
                .map_err(db_err)?
        });
        Ok(n as u64)
    }
}
