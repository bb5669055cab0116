//! The bridge (spec 04): attaching to a run's events after it started, from the start or
//! after a cursor. A run this process still holds in memory is served from its log (also
//! when the bus is down); otherwise the bus has the events until its TTL ends, and after
//! that the caller is told the stream is gone and reads display_messages instead.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use ports::{ConversationId, SessionId};
use ports::{EventBus, EventBusError, EventEnvelope, SessionType, StorageError, StreamKey};

use super::control::LiveRuns;
use super::run_log::RunLog;

/// Why attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The run is over and its stream expired.
    #[error("the event stream of session {0} has expired; read its display_messages")]
    Gone(String),
    #[error("the event bus is unavailable: {0}")]
    Unavailable(EventBusError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What an attach finds.
pub enum Attached {
    /// The events after the cursor, then live ones until the terminal event.
    Events(BoxStream<'static, Arc<EventEnvelope>>),
    /// The cursor is at the run's terminal event: the caller has seen everything (a
    /// browser's `EventSource` reconnecting after the end is told to stop).
    Finished,
}

impl Attached {
    fn from_log(log: &Arc<RunLog>, after: u64) -> Self {
        if after > 0 && log.ends_by(after) {
            Self::Finished
        } else {
            Self::Events(log.subscribe(after))
        }
    }
}

/// How long a bus read waits for more events. The bus path serves runs this process has
/// finished forwarding, so everything is already there; the wait only absorbs clock skew of
/// a bus shared with other replicas.
const READ_WAIT: Duration = Duration::from_secs(1);

impl LiveRuns {
    /// Events of `session_id` after `after` (0: from the start), live until the terminal one.
    ///
    /// # Errors
    /// `NotFound` for an unknown session, `Gone` once its stream expired.
    pub async fn attach_session(
        &self,
        session_id: &SessionId,
        after: u64,
    ) -> Result<Attached, AttachError> {
        if let Some(log) = self.registry.log(session_id) {
            return Ok(Attached::from_log(&log, after));
        }
        match self.sessions.get_session(session_id).await {
            Err(StorageError::NotFound) => return Err(AttachError::NotFound("session")),
            other => other?,
        };
        // The run may have left memory while we looked the row up.
        if let Some(log) = self.registry.log(session_id) {
            return Ok(Attached::from_log(&log, after));
        }
        let key = StreamKey::for_session(session_id);
        let bus = self.bus.clone();
        if !bus.exists(&key).await.map_err(AttachError::Unavailable)? {
            return Err(AttachError::Gone(session_id.to_string()));
        }
        if after > 0 {
            // A cursor on (or past) the terminal event means the caller has seen everything:
            // a run on the bus and no longer in memory has all its events there.
            let at_cursor = bus
                .read_after(&key, after - 1, Duration::ZERO)
                .await
                .map_err(AttachError::Unavailable)?;
            let seen_all = match at_cursor.first() {
                None => true,
                Some(e) => e.event_id == after && e.is_terminal(),
            };
            if seen_all {
                return Ok(Attached::Finished);
            }
        }
        Ok(Attached::Events(bus_stream(bus, key, after)))
    }

    /// The events of the conversation's active agent session, or of its latest one while
    /// that one's stream lasts.
    ///
    /// # Errors
    /// `NotFound` for an unknown conversation, `Gone` when nothing can be attached.
    pub async fn attach_conversation(
        &self,
        conversation_id: &ConversationId,
        after: u64,
    ) -> Result<Attached, AttachError> {
        if let Some(handle) = self.registry.agent_run_of(conversation_id) {
            return Ok(Attached::from_log(&handle.log, after));
        }
        match self.conversations.get_conversation(conversation_id).await {
            Err(StorageError::NotFound) => return Err(AttachError::NotFound("conversation")),
            other => other?,
        };
        let latest = self
            .sessions
            .latest_session(conversation_id, SessionType::Agent)
            .await?;
        match latest {
            Some(session) => self.attach_session(&session.session_id, after).await,
            None => Err(AttachError::Gone(conversation_id.to_string())),
        }
    }
}

/// Reads the bus from `after` until the terminal event; ends early when the stream expires,
/// holds nothing more, or the bus fails (the caller re-attaches with its last id).
fn bus_stream(
    bus: Arc<dyn EventBus>,
    key: StreamKey,
    after: u64,
) -> BoxStream<'static, Arc<EventEnvelope>> {
    struct Reader {
        bus: Arc<dyn EventBus>,
        key: StreamKey,
        cursor: u64,
        done: bool,
    }
    let reader = Reader {
        bus,
        key,
        cursor: after,
        done: false,
    };
    stream::unfold(reader, |mut r| async move {
        if r.done {
            return None;
        }
        match r.bus.read_after(&r.key, r.cursor, READ_WAIT).await {
            // Nothing more will come (a forwarder that gave up left no terminal event).
            Ok(batch) if batch.is_empty() => None,
            Ok(batch) => {
                if let Some(first) = batch.first()
                    && first.event_id > r.cursor + 1
                {
                    tracing::warn!(stream = %r.key, from = r.cursor + 1, to = first.event_id - 1, "events dropped by the bus cap before a slow reader got them");
                }
                let mut out = Vec::with_capacity(batch.len());
                for event in batch {
                    r.cursor = event.event_id;
                    let terminal = event.is_terminal();
                    out.push(Arc::new(event));
                    if terminal {
                        r.done = true;
                        break;
                    }
                }
                Some((stream::iter(out), r))
            }
            Err(EventBusError::NotFound) => None,
            Err(e) => {
                tracing::warn!(stream = %r.key, error = %e, "reading the event bus failed; closing the attached stream");
                None
            }
        }
    })
    .flatten()
    .boxed()
}
