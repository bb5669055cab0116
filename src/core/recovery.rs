//! Startup recovery: a session still `created` at boot was orphaned by a crash (the
//! registry starts empty), so it is marked `failed` before the API accepts requests, and
//! its event stream, when the bus outlived the process (Redis), gets the terminal event it
//! never received: an attached reader then ends cleanly and the stream expires. An
//! orphaned async subagent also reports its failure to its conversation's mailbox, as it
//! would have had it failed while running.

use std::sync::Arc;

use ports::SessionId;
use ports::{
    EventBus, EventBusError, EventEnvelope, EventPayload, MAIN_AGENT, MailboxMessage, MailboxRepo,
    MailboxSource, RunFailed, SessionRepo, StorageError, StreamKey, now,
};

/// What recovery touches.
pub struct Recovery<'a> {
    pub sessions: &'a dyn SessionRepo,
    pub mailbox: &'a dyn MailboxRepo,
    pub bus: &'a dyn EventBus,
}

/// The reason recorded on recovered sessions.
pub const ORPHAN_REASON: &str = "the service stopped while this session was running";

/// Marks orphaned sessions failed and ends their streams; returns how many there were.
/// A bus that cannot be reached only costs the stream endings (logged).
///
/// # Errors
/// The database could not be updated.
pub async fn fail_orphaned_sessions(r: &Recovery<'_>) -> Result<u64, StorageError> {
    let orphans = r.sessions.fail_orphans(ORPHAN_REASON, now()).await?;
    if orphans.is_empty() {
        return Ok(0);
    }
    tracing::warn!(sessions = orphans.len(), "marked orphaned sessions failed");
    for session_id in &orphans {
        if let Err(e) = end_stream(r.bus, session_id).await {
            tracing::warn!(%session_id, error = %e, "could not end the orphaned session's event stream");
        }
        if let Err(e) = report_subagent(r, session_id).await {
            tracing::warn!(%session_id, error = %e, "could not report the orphaned subagent's failure to the mailbox");
        }
    }
    Ok(orphans.len() as u64)
}

/// Posts `subagent_failed` for an orphaned async subagent session, under the name stored
/// on it.
async fn report_subagent(r: &Recovery<'_>, session_id: &SessionId) -> Result<(), StorageError> {
    let session = r.sessions.get_session(session_id).await?;
    let Some(name) = session.kind.subagent_name() else {
        return Ok(());
    };
    r.mailbox
        .post_message(&MailboxMessage {
            message_id: uuid::Uuid::now_v7().to_string(),
            conversation_id: session.conversation_id.clone(),
            source_session_id: session.session_id.clone(),
            source_type: MailboxSource::SubagentFailed,
            subagent_name: name.to_owned(),
            created_at: now(),
            delivered_to: None,
        })
        .await
}

/// Appends `run_failed` after the last event the stream holds, unless it already ended.
async fn end_stream(bus: &dyn EventBus, session_id: &SessionId) -> Result<(), EventBusError> {
    let key = StreamKey::for_session(session_id);
    let held = match bus.read_after(&key, 0, std::time::Duration::ZERO).await {
        Ok(held) => held,
        Err(EventBusError::NotFound) => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(last) = held.last() else {
        return Ok(());
    };
    if last.is_terminal() {
        return Ok(());
    }
    let ending = EventEnvelope {
        event_id: last.event_id + 1,
        session_id: session_id.to_string(),
        agent_id: MAIN_AGENT.to_owned(),
        timestamp: now(),
        payload: EventPayload::RunFailed(RunFailed {
            code: "service_stopped".to_owned(),
            message: ORPHAN_REASON.to_owned(),
        }),
    };
    bus.append_batch(&key, &[Arc::new(ending)]).await
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use ports::mocks::{MockEventBus, MockMailboxRepo, MockSessionRepo};
    use ports::{ContentDelta, ContentKind, SessionKind, SessionRecord, SessionStatus, Transport};

    use super::*;

    fn delta(id: u64, session: &str) -> EventEnvelope {
        EventEnvelope {
            event_id: id,
            session_id: session.into(),
            agent_id: MAIN_AGENT.into(),
            timestamp: now(),
            payload: EventPayload::ContentDelta(ContentDelta {
                kind: ContentKind::Text,
                delta: "x".into(),
            }),
        }
    }

    #[tokio::test]
    async fn orphans_are_failed_and_their_live_streams_end_with_run_failed() {
        let mut repo = MockSessionRepo::new();
        repo.expect_fail_orphans()
            .withf(|reason, _| reason == ORPHAN_REASON)
            .times(1)
            .returning(|_, _| Ok(vec!["a".into(), "b".into(), "c".into()]));
        let appended = Arc::new(Mutex::new(Vec::new()));
        let mut bus = MockEventBus::new();
        bus.expect_read_after()
            .returning(|key, _, _| match key.as_str() {
                "runs:a" => Ok(vec![delta(1, "a"), delta(2, "a")]),
                "runs:b" => Err(EventBusError::NotFound),
                _ => Err(EventBusError::Unavailable("down".into())),
            });
        {
            let appended = appended.clone();
            bus.expect_append_batch().returning(move |key, events| {
                let mut appended = appended.lock().unwrap();
                appended.extend(events.iter().map(|e| (key.clone(), (**e).clone())));
                Ok(())
            });
        }
        repo.expect_get_session()
            .returning(|id| Ok(orphan(id, SessionKind::Agent)));
        let mut mailbox = MockMailboxRepo::new();
        mailbox.expect_post_message().times(0);
        let r = Recovery {
            sessions: &repo,
            mailbox: &mailbox,
            bus: &bus,
        };
        assert_eq!(fail_orphaned_sessions(&r).await.unwrap(), 3);
        let appended = appended.lock().unwrap();
        assert_eq!(appended.len(), 1, "only the live stream gets an ending");
        let (key, event) = &appended[0];
        assert_eq!(key.as_str(), "runs:a");
        assert_eq!(event.event_id, 3);
        assert!(
            matches!(&event.payload, EventPayload::RunFailed(f) if f.code == "service_stopped")
        );
    }

    fn orphan(id: &str, kind: SessionKind) -> SessionRecord {
        let at = now();
        SessionRecord {
            session_id: id.into(),
            parent_session_id: None,
            conversation_id: "conv".into(),
            kind,
            transport: Transport::Stream,
            preset_id: None,
            status: SessionStatus::Failed,
            run_summary: None,
            pending_tool_calls: vec![],
            error: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[tokio::test]
    async fn an_orphaned_async_subagent_reports_its_failure_under_its_name() {
        let mut repo = MockSessionRepo::new();
        repo.expect_fail_orphans()
            .returning(|_, _| Ok(vec!["sub".into()]));
        repo.expect_get_session().returning(|id| {
            Ok(orphan(
                id,
                SessionKind::AsyncSubagent {
                    spawned_by: "boss".into(),
                    subagent_name: "alpha".into(),
                },
            ))
        });
        let mut bus = MockEventBus::new();
        bus.expect_read_after()
            .returning(|_, _, _| Err(EventBusError::NotFound));
        let posted = Arc::new(Mutex::new(Vec::new()));
        let mut mailbox = MockMailboxRepo::new();
        {
            let posted = posted.clone();
            mailbox.expect_post_message().returning(move |m| {
                posted.lock().unwrap().push(m.clone());
                Ok(())
            });
        }
        let r = Recovery {
            sessions: &repo,
            mailbox: &mailbox,
            bus: &bus,
        };
        assert_eq!(fail_orphaned_sessions(&r).await.unwrap(), 1);
        let posted = posted.lock().unwrap();
        assert_eq!(posted.len(), 1);
        assert_eq!(posted[0].source_type, MailboxSource::SubagentFailed);
        assert_eq!(posted[0].subagent_name, "alpha");
        assert_eq!(posted[0].source_session_id, "sub");
        assert_eq!(posted[0].conversation_id, "conv");
    }
}
