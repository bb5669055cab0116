//! The event processor's live record of one run (spec 04): it numbers events 1, 2, 3 …,
//! stamps them, keeps them in memory and wakes readers. Every local consumer (the sse
//! response, the bus forwarder, an attached bridge, compression at the end) reads it at its
//! own pace, so the agent never waits for any of them: `push` is a short locked append.
//!
//! The log holds one run's events until the run is finalized and forwarded; its size is
//! bounded by the run's own limits (model requests per run).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::stream::{self, BoxStream, StreamExt};
use ports::{EventEnvelope, EventPayload, now};
use tokio::sync::watch;

use crate::core::run::EventSink;

/// One run's events, in order, ending with exactly one terminal event.
pub struct RunLog {
    session_id: String,
    events: Mutex<Vec<Arc<EventEnvelope>>>,
    /// The id of the newest event; readers wait for it to change.
    last_id: watch::Sender<u64>,
}

impl RunLog {
    pub fn new(session_id: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            session_id: session_id.into(),
            events: Mutex::new(Vec::with_capacity(64)),
            last_id: watch::Sender::new(0),
        })
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// No step under the lock can fail half-way, so a poisoned lock still holds a valid log.
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<EventEnvelope>>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an event and returns its id. Anything pushed after the terminal event is
    /// dropped (and logged), so consumers always see exactly one terminal event, last.
    pub fn push(&self, agent_id: &str, payload: EventPayload) -> Option<u64> {
        let mut events = self.lock();
        if events.last().is_some_and(|e| e.is_terminal()) {
            tracing::warn!(session_id = %self.session_id, event_type = payload.event_type(), "event after the terminal event dropped");
            return None;
        }
        let event_id = events.len() as u64 + 1;
        events.push(Arc::new(EventEnvelope {
            event_id,
            session_id: self.session_id.clone(),
            agent_id: agent_id.to_owned(),
            timestamp: now(),
            payload,
        }));
        drop(events);
        self.last_id.send_replace(event_id);
        Some(event_id)
    }

    /// Events with id > `after`, oldest first.
    pub fn after(&self, after: u64) -> Vec<Arc<EventEnvelope>> {
        let events = self.lock();
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(events.len());
        events[start..].to_vec()
    }

    /// Every event so far.
    pub fn snapshot(&self) -> Vec<Arc<EventEnvelope>> {
        self.after(0)
    }

    /// True once the terminal event is in.
    pub fn is_finished(&self) -> bool {
        self.lock().last().is_some_and(|e| e.is_terminal())
    }

    /// The events after `after`, then live ones as they come, ending after the terminal
    /// event (at once when the cursor is already at or past it).
    pub fn subscribe(self: &Arc<Self>, after: u64) -> BoxStream<'static, Arc<EventEnvelope>> {
        struct Reader {
            log: Arc<RunLog>,
            cursor: u64,
            pending: VecDeque<Arc<EventEnvelope>>,
            done: bool,
        }
        let reader = Reader {
            log: Arc::clone(self),
            cursor: after,
            pending: VecDeque::new(),
            done: false,
        };
        stream::unfold(reader, |mut r| async move {
            loop {
                if let Some(event) = r.pending.pop_front() {
                    r.cursor = event.event_id;
                    r.done = event.is_terminal();
                    return Some((event, r));
                }
                if r.done {
                    return None;
                }
                // Subscribing before looking means no append can slip in between.
                let mut changed = r.log.last_id.subscribe();
                let batch = r.log.after(r.cursor);
                if batch.is_empty() {
                    if r.log.is_finished() {
                        return None;
                    }
                    // The sender lives as long as the log we hold: this cannot fail.
                    if changed.changed().await.is_err() {
                        return None;
                    }
                    continue;
                }
                r.pending.extend(batch);
            }
        })
        .boxed()
    }
}

impl EventSink for RunLog {
    fn emit(&self, agent_id: &str, payload: EventPayload) {
        self.push(agent_id, payload);
    }
}

#[cfg(test)]
mod tests {
    use ports::{ContentDelta, ContentKind, MAIN_AGENT, RunFailed};

    use super::*;

    fn delta(text: &str) -> EventPayload {
        EventPayload::ContentDelta(ContentDelta {
            kind: ContentKind::Text,
            delta: text.into(),
        })
    }

    fn failed() -> EventPayload {
        EventPayload::RunFailed(RunFailed {
            code: "x".into(),
            message: "y".into(),
        })
    }

    #[tokio::test]
    async fn ids_count_from_one_and_nothing_follows_the_terminal_event() {
        let log = RunLog::new("s");
        assert_eq!(log.push(MAIN_AGENT, delta("a")), Some(1));
        assert_eq!(log.push(MAIN_AGENT, delta("b")), Some(2));
        assert_eq!(log.push(MAIN_AGENT, failed()), Some(3));
        assert_eq!(log.push(MAIN_AGENT, delta("late")), None);
        let ids: Vec<u64> = log.snapshot().iter().map(|e| e.event_id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(log.snapshot().iter().all(|e| e.session_id == "s"));
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_rest_then_live_events_then_stops() {
        let log = RunLog::new("s");
        log.push(MAIN_AGENT, delta("a"));
        log.push(MAIN_AGENT, delta("b"));
        let reader = tokio::spawn({
            let log = log.clone();
            async move {
                log.subscribe(1)
                    .map(|e| e.event_id)
                    .collect::<Vec<_>>()
                    .await
            }
        });
        tokio::task::yield_now().await;
        log.push(MAIN_AGENT, delta("c"));
        log.push(MAIN_AGENT, failed());
        assert_eq!(reader.await.unwrap(), [2, 3, 4]);
    }

    #[tokio::test]
    async fn a_cursor_at_the_end_of_a_finished_run_ends_at_once() {
        let log = RunLog::new("s");
        log.push(MAIN_AGENT, delta("a"));
        log.push(MAIN_AGENT, failed());
        assert_eq!(log.subscribe(2).count().await, 0);
        assert_eq!(log.subscribe(7).count().await, 0);
        assert_eq!(log.subscribe(0).count().await, 2);
    }
}
