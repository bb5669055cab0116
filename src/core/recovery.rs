//! Startup recovery: a session still `created` at boot was orphaned by a crash (the
//! registry starts empty), so it is marked `failed` before the API accepts requests, and
//! its event stream, when the bus outlived the process (Redis), gets the terminal event it
//! never received: an attached reader then ends cleanly and the stream expires.

use ports::{
    EventBus, EventBusError, EventEnvelope, EventPayload, MAIN_AGENT, RunFailed, SessionRepo,
    StorageError, StreamKey, now,
};

/// The reason recorded on recovered sessions.
pub const ORPHAN_REASON: &str = "the service stopped while this session was running";

/// Marks orphaned sessions failed and ends their streams; returns how many there were.
/// A bus that cannot be reached only costs the stream endings (logged).
///
/// # Errors
/// The database could not be updated.
pub async fn fail_orphaned_sessions(
    sessions: &dyn SessionRepo,
    bus: &dyn EventBus,
) -> Result<u64, StorageError> {
    let orphans = sessions.fail_orphans(ORPHAN_REASON, now()).await?;
    if orphans.is_empty() {
        return Ok(0);
    }
    tracing::warn!(sessions = orphans.len(), "marked orphaned sessions failed");
    for session_id in &orphans {
        if let Err(e) = end_stream(bus, session_id).await {
            tracing::warn!(%session_id, error = %e, "could not end the orphaned session's event stream");
        }
    }
    Ok(orphans.len() as u64)
}

/// Appends `run_failed` after the last event the stream holds, unless it already ended.
async fn end_stream(bus: &dyn EventBus, session_id: &str) -> Result<(), EventBusError> {
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
    bus.append(
        &key,
        &EventEnvelope {
            event_id: last.event_id + 1,
            session_id: session_id.to_owned(),
            agent_id: MAIN_AGENT.to_owned(),
            timestamp: now(),
            payload: EventPayload::RunFailed(RunFailed {
                code: "service_stopped".to_owned(),
                message: ORPHAN_REASON.to_owned(),
            }),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use ports::mocks::{MockEventBus, MockSessionRepo};
    use ports::{ContentDelta, ContentKind};

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
            bus.expect_append().returning(move |key, e| {
                appended.lock().unwrap().push((key.clone(), e.clone()));
                Ok(())
            });
        }
        assert_eq!(fail_orphaned_sessions(&repo, &bus).await.unwrap(), 3);
        let appended = appended.lock().unwrap();
        assert_eq!(appended.len(), 1, "only the live stream gets an ending");
        let (key, event) = &appended[0];
        assert_eq!(key.as_str(), "runs:a");
        assert_eq!(event.event_id, 3);
        assert!(
            matches!(&event.payload, EventPayload::RunFailed(f) if f.code == "service_stopped")
        );
    }
}
