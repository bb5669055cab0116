//! `SessionRepo` on SQL. The one-running-agent-session rule is the partial unique index
//! `sessions_one_running_agent`; this module only translates its violation.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ports::{
    Conversation, ConversationStatus, Page, SessionOutcome, SessionRecord, SessionRepo,
    SessionStatus, SessionType, StorageError, Timestamp,
};
use ports::{ConversationId, SessionId};

use super::conversations::lock_conversation;
use super::{
    SqlStorage, TxError, db_err,
    rows::{self, ConversationRow, MetadataRow, SessionRow},
    schema::{conversation_metadata, conversations, sessions},
    with_conn,
};

impl SqlStorage {
    async fn insert_session(
        &self,
        row: &SessionRow,
        conversation: Option<&(ConversationRow, Vec<MetadataRow>)>,
    ) -> Result<(), StorageError> {
        with_conn!(self, write, |c| {
            c.transaction::<_, TxError, _>(async |c| {
                match conversation {
                    Some((conv, metadata)) => {
                        diesel::insert_into(conversations::table)
                            .values(conv)
                            .execute(c)
                            .await?;
                        for pair in metadata {
                            diesel::insert_into(conversation_metadata::table)
                                .values(pair)
                                .execute(c)
                                .await?;
                        }
                    }
                    None => {
                        let status = lock_conversation!(c, &row.conversation_id);
                        if status == ConversationStatus::Archived.as_str() {
                            return Err(StorageError::ConversationArchived.into());
                        }
                    }
                }
                diesel::insert_into(sessions::table)
                    .values(row)
                    .execute(c)
                    .await?;
                Ok(())
            })
            .await
            .map_err(|TxError(e)| e)
        })
    }

    /// Explains a unique violation on insert: a taken id, or the running-session index.
    async fn explain_conflict(
        &self,
        session: &SessionRecord,
    ) -> Result<Option<StorageError>, StorageError> {
        match self.get_session(&session.session_id).await {
            Ok(_) => return Ok(Some(StorageError::AlreadyExists)),
            Err(StorageError::NotFound) => {}
            Err(e) => return Err(e),
        }
        if session.session_type() != SessionType::Agent {
            return Ok(Some(StorageError::AlreadyExists));
        }
        Ok(self
            .running_agent_session(&session.conversation_id)
            .await?
            .map(|running| StorageError::ConversationBusy {
                session_id: running.session_id,
            }))
    }
}

#[async_trait]
impl SessionRepo for SqlStorage {
    async fn create_session(
        &self,
        session: &SessionRecord,
        new_conversation: Option<Conversation>,
    ) -> Result<(), StorageError> {
        let row = SessionRow::from_domain(session)?;
        let conversation = new_conversation.as_ref().map(|c| {
            (
                ConversationRow::from_domain(c),
                MetadataRow::of(c.conversation_id.as_str(), &c.metadata),
            )
        });
        // A conflict whose running session finished before we could name it is retried
        // once; a second such race is reported as busy without an id.
        for _ in 0..2 {
            match self.insert_session(&row, conversation.as_ref()).await {
                Err(StorageError::AlreadyExists) if conversation.is_none() => {
                    if let Some(explained) = self.explain_conflict(session).await? {
                        return Err(explained);
                    }
                }
                other => return other,
            }
        }
        Err(StorageError::ConversationBusy {
            session_id: SessionId::from(String::new()),
        })
    }

    async fn get_session(&self, session_id: &SessionId) -> Result<SessionRecord, StorageError> {
        let session_id = session_id.as_str();
        let row: SessionRow = with_conn!(self, read, |c| {
            sessions::table
                .find(session_id)
                .select(SessionRow::as_select())
                .first(c)
                .await
                .map_err(db_err)?
        });
        row.into_domain()
    }

    async fn finish_session(
        &self,
        session_id: &SessionId,
        outcome: &SessionOutcome,
    ) -> Result<(), StorageError> {
        let session_id = session_id.as_str();
        if outcome.status == SessionStatus::Created {
            return Err(StorageError::Conflict(
                "created is not a final state".into(),
            ));
        }
        let run_summary = outcome
            .run_summary
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StorageError::Other(Box::new(e)))?;
        let pending = serde_json::to_string(&outcome.pending_tool_calls)
            .map_err(|e| StorageError::Other(Box::new(e)))?;
        let at = outcome.finished_at.timestamp_micros();
        with_conn!(self, write, |c| {
            c.transaction::<_, TxError, _>(async |c| {
                let conversation: String = sessions::table
                    .find(session_id)
                    .select(sessions::conversation_id)
                    .first(c)
                    .await?;
                let changed = diesel::update(
                    sessions::table
                        .find(session_id)
                        .filter(sessions::status.eq(SessionStatus::Created.as_str())),
                )
                .set((
                    sessions::status.eq(outcome.status.as_str()),
                    sessions::run_summary.eq(&run_summary),
                    sessions::pending_tool_calls.eq(&pending),
                    sessions::error.eq(&outcome.error),
                    sessions::updated_at.eq(at),
                ))
                .execute(c)
                .await?;
                if changed == 0 {
                    return Err(StorageError::Conflict("session is not running".into()).into());
                }
                diesel::update(
                    conversations::table
                        .find(&conversation)
                        .filter(conversations::updated_at.lt(at)),
                )
                .set(conversations::updated_at.eq(at))
                .execute(c)
                .await?;
                Ok(())
            })
            .await
            .map_err(|TxError(e)| e)
        })
    }

    async fn list_sessions(
        &self,
        conversation_id: &ConversationId,
        session_type: Option<SessionType>,
        page: Page,
    ) -> Result<Vec<SessionRecord>, StorageError> {
        let conversation_id = conversation_id.as_str();
        let found: Vec<SessionRow> = with_conn!(self, read, |c| {
            let mut query = sessions::table
                .filter(sessions::conversation_id.eq(conversation_id))
                .select(SessionRow::as_select())
                .order((sessions::created_at.asc(), sessions::session_id.asc()))
                .limit(i64::from(page.limit))
                .offset(i64::from(page.offset))
                .into_boxed();
            if let Some(kind) = session_type {
                query = query.filter(sessions::session_type.eq(kind.as_str()));
            }
            query.load(c).await.map_err(db_err)?
        });
        rows::all(found, SessionRow::into_domain)
    }

    async fn latest_continuable(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Option<SessionRecord>, StorageError> {
        let conversation_id = conversation_id.as_str();
        let found: Option<SessionRow> = with_conn!(self, read, |c| {
            sessions::table
                .filter(sessions::conversation_id.eq(conversation_id))
                .filter(sessions::session_type.eq(SessionType::Agent.as_str()))
                .filter(sessions::status.eq_any([
                    SessionStatus::Committed.as_str(),
                    SessionStatus::AwaitingToolResults.as_str(),
                ]))
                .order((sessions::created_at.desc(), sessions::session_id.desc()))
                .select(SessionRow::as_select())
                .first(c)
                .await
                .optional()
                .map_err(db_err)?
        });
        found.map(SessionRow::into_domain).transpose()
    }

    async fn latest_session(
        &self,
        conversation_id: &ConversationId,
        session_type: SessionType,
    ) -> Result<Option<SessionRecord>, StorageError> {
        let conversation_id = conversation_id.as_str();
        let found: Option<SessionRow> = with_conn!(self, read, |c| {
            sessions::table
                .filter(sessions::conversation_id.eq(conversation_id))
                .filter(sessions::session_type.eq(session_type.as_str()))
                .order((sessions::created_at.desc(), sessions::session_id.desc()))
                .select(SessionRow::as_select())
                .first(c)
                .await
                .optional()
                .map_err(db_err)?
        });
        found.map(SessionRow::into_domain).transpose()
    }

    async fn running_agent_session(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Option<SessionRecord>, StorageError> {
        let conversation_id = conversation_id.as_str();
        let found: Option<SessionRow> = with_conn!(self, read, |c| {
            sessions::table
                .filter(sessions::conversation_id.eq(conversation_id))
                .filter(sessions::session_type.eq(SessionType::Agent.as_str()))
                .filter(sessions::status.eq(SessionStatus::Created.as_str()))
                .select(SessionRow::as_select())
                .first(c)
                .await
                .optional()
                .map_err(db_err)?
        });
        found.map(SessionRow::into_domain).transpose()
    }

    async fn fail_orphans(
        &self,
        reason: &str,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StorageError> {
        let ids: Vec<String> = with_conn!(self, write, |c| {
            diesel::update(
                sessions::table.filter(sessions::status.eq(SessionStatus::Created.as_str())),
            )
            .set((
                sessions::status.eq(SessionStatus::Failed.as_str()),
                sessions::error.eq(reason),
                sessions::updated_at.eq(at.timestamp_micros()),
            ))
            .returning(sessions::session_id)
            .get_results(c)
            .await
            .map_err(db_err)?
        });
        Ok(ids.into_iter().map(SessionId::from).collect())
    }
}
