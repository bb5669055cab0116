//! `IdempotencyRepo` on SQL. A claim is an `INSERT … ON CONFLICT DO NOTHING` on the key:
//! of concurrent claims exactly one inserts, on both backends.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ports::{Claim, IdempotencyRecord, IdempotencyRepo, StorageError, Timestamp, from_micros};
use ports::{ConversationId, SessionId};

use super::{SqlStorage, db_err, schema::idempotency_keys, with_conn};

#[derive(Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
struct KeyRow {
    key: String,
    fingerprint: String,
    session_id: Option<String>,
    conversation_id: Option<String>,
    created_at: i64,
}

impl KeyRow {
    fn into_domain(self) -> IdempotencyRecord {
        IdempotencyRecord {
            key: self.key,
            fingerprint: self.fingerprint,
            run: self
                .session_id
                .zip(self.conversation_id)
                .map(|(s, c)| (SessionId::from(s), ConversationId::from(c))),
            created_at: from_micros(self.created_at),
        }
    }
}

#[async_trait]
impl IdempotencyRepo for SqlStorage {
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expired_before: Timestamp,
    ) -> Result<Claim, StorageError> {
        let (now, expired_before) = (now.timestamp_micros(), expired_before.timestamp_micros());
        let inserted = with_conn!(self, write, |c| {
            diesel::delete(
                idempotency_keys::table.filter(idempotency_keys::created_at.lt(expired_before)),
            )
            .execute(c)
            .await
            .map_err(db_err)?;
            diesel::insert_into(idempotency_keys::table)
                .values((
                    idempotency_keys::key.eq(key),
                    idempotency_keys::fingerprint.eq(fingerprint),
                    idempotency_keys::created_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(c)
                .await
                .map_err(db_err)?
        });
        if inserted == 1 {
            return Ok(Claim::Claimed);
        }
        match self.get_claim(key).await? {
            Some(record) => Ok(Claim::Taken(record)),
            // Released between the insert and the read: the caller may claim again.
            None => Err(StorageError::Conflict(format!(
                "retry key {key} was released while it was claimed; retry"
            ))),
        }
    }

    async fn get_claim(&self, key: &str) -> Result<Option<IdempotencyRecord>, StorageError> {
        let row: Option<KeyRow> = with_conn!(self, read, |c| {
            idempotency_keys::table
                .find(key)
                .select(KeyRow::as_select())
                .first(c)
                .await
                .optional()
                .map_err(db_err)?
        });
        Ok(row.map(KeyRow::into_domain))
    }

    async fn settle(
        &self,
        key: &str,
        session_id: &SessionId,
        conversation_id: &ConversationId,
    ) -> Result<(), StorageError> {
        let (session_id, conversation_id) = (session_id.as_str(), conversation_id.as_str());
        with_conn!(self, write, |c| {
            diesel::update(idempotency_keys::table.find(key))
                .set((
                    idempotency_keys::session_id.eq(session_id),
                    idempotency_keys::conversation_id.eq(conversation_id),
                ))
                .execute(c)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    async fn release(&self, key: &str) -> Result<(), StorageError> {
        with_conn!(self, write, |c| {
            diesel::delete(idempotency_keys::table.find(key))
                .execute(c)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }
}
