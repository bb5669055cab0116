//! The event processor's live record of one run (spec 04): it numbers events 1, 2, 3 …,
//! stamps them, keeps them in memory and wakes readers. Every local consumer (the sse
//! response, the bus forwarder, an attached bridge, compression at the end) reads it at its
//! own pace, so the agent never waits for any of them: `push` is a short locked append.
//!
//! The log holds one run's events until the run is finalized and forwarded; its size is
//! bounded by the run's own limits (model requests per run).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use ports::{EventEnvelope, EventPayload, now};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::core::run::EventSink;

/// While deltas stream, a reader that has just taken one is woken for the next delta at
/// most this much later: what arrives meanwhile (the deltas of an answer come every few
/// milliseconds) is taken together, so an SSE body writes it as one chunk (one socket
/// write) and its connection is woken once instead of once per event. Every other event
/// (the terminal one included) wakes readers at once, with the deltas before it, and so
/// does the first delta after another event (`message_start`) or after a quiet spell.
pub const PACE: Duration = Duration::from_millis(20);

/// One run's events, in order, ending with exactly one terminal event.
pub struct RunLog {
    session_id: String,
    events: Mutex<Vec<Arc<EventEnvelope>>>,
    /// Wakes the readers waiting for the next event.
    appended: Notify,
    /// Wakes the readers pacing themselves (see [`PACE`]) for an event that is not a delta.
    urgent: Notify,
}

/// What a reader finds after its cursor.
enum Next {
    Event(Arc<EventEnvelope>),
    /// Nothing after the cursor, and nothing will come: the terminal event is in.
    Finished,
    /// Nothing after the cursor yet.
    Pending,
}

impl RunLog {
    pub fn new(session_id: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            session_id: session_id.into(),
            events: Mutex::new(Vec::with_capacity(64)),
            appended: Notify::new(),
            urgent: Notify::new(),
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
        let urgent = !is_delta(&payload);
        events.push(Arc::new(EventEnvelope {
            event_id,
            session_id: self.session_id.clone(),
            agent_id: agent_id.to_owned(),
            timestamp: now(),
            payload,
        }));
        drop(events);
        if urgent {
            self.urgent.notify_waiters();
        }
        self.appended.notify_waiters();
        Some(event_id)
    }

    /// The event after `cursor` (one lock, no copy but the `Arc`).
    fn next_after(&self, cursor: u64) -> Next {
        let events = self.lock();
        let at = usize::try_from(cursor).unwrap_or(usize::MAX);
        match events.get(at) {
            Some(event) => Next::Event(Arc::clone(event)),
            None if events.last().is_some_and(|e| e.is_terminal()) => Next::Finished,
            None => Next::Pending,
        }
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

    /// True when the terminal event is in and its id is at most `cursor`: a reader there
    /// has seen everything.
    pub fn ends_by(&self, cursor: u64) -> bool {
        self.lock()
            .last()
            .is_some_and(|e| e.is_terminal() && e.event_id <= cursor)
    }

    /// True once the terminal event is in.
    pub fn is_finished(&self) -> bool {
        self.lock().last().is_some_and(|e| e.is_terminal())
    }

    /// The events after `after`, then live ones as they come, ending after the terminal
    /// event (at once when the cursor is already at or past it). Live events are paced:
    /// see [`PACE`].
    ///
    /// A reader takes one event per step straight from the log: nothing is allocated per
    /// event or per wake-up, however often the run appends.
    pub fn subscribe(self: &Arc<Self>, after: u64) -> BoxStream<'static, Arc<EventEnvelope>> {
        struct Reader {
            log: Arc<RunLog>,
            cursor: u64,
            done: bool,
            /// When the reader took the last event, if that was a delta.
            took: Option<Instant>,
        }
        let reader = Reader {
            log: Arc::clone(self),
            cursor: after,
            done: false,
            took: None,
        };
        stream::unfold(reader, |mut r| async move {
            if r.done {
                return None;
            }
            loop {
                // Created before looking, so no append can slip in between: a `Notified`
                // hears every `notify_waiters` made after its creation.
                let appended = r.log.appended.notified();
                let urgent = r.log.urgent.notified();
                match r.log.next_after(r.cursor) {
                    Next::Event(event) => {
                        drop((appended, urgent));
                        r.cursor = event.event_id;
                        r.done = event.is_terminal();
                        r.took = is_delta(&event.payload).then(Instant::now);
                        return Some((event, r));
                    }
                    Next::Finished => return None,
                    Next::Pending => match r.took.map(|took| took + PACE) {
                        // Deltas stream: the next ones are taken together at the pace, or
                        // with the first other event if it comes before.
                        Some(paced) if Instant::now() < paced => {
                            tokio::select! {
                                () = urgent => {}
                                () = tokio::time::sleep_until(paced) => {}
                            }
                        }
                        _ => appended.await,
                    },
                }
            }
        })
        .boxed()
    }
}

/// The events a streaming answer is made of.
fn is_delta(payload: &EventPayload) -> bool {
    matches!(
        payload,
        EventPayload::ContentDelta(_) | EventPayload::ToolCallArgsDelta(_)
    )
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

    fn usage() -> EventPayload {
        EventPayload::UsageSnapshot(ports::UsageSnapshot {
            usage: ports::Usage::default(),
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

    #[tokio::test(start_paused = true)]
    async fn deltas_are_paced_but_not_other_events_nor_after_a_quiet_spell_nor_the_terminal() {
        let log = RunLog::new("s");
        let mut reader = log.subscribe(0);
        let next = |mut reader: BoxStream<'static, Arc<EventEnvelope>>| {
            tokio::spawn(async move {
                let id = reader.next().await.map(|e| e.event_id);
                (id, Instant::now(), reader)
            })
        };
        log.push(MAIN_AGENT, delta("a"));
        let t0 = Instant::now();
        assert_eq!(reader.next().await.map(|e| e.event_id), Some(1));

        // A delta right after a delta waits for the pace.
        let waiting = next(reader);
        tokio::task::yield_now().await;
        log.push(MAIN_AGENT, delta("b"));
        let (id, at, reader) = waiting.await.unwrap();
        assert_eq!((id, at - t0), (Some(2), PACE));

        // Any other event goes at once, and so does the delta after it.
        let waiting = next(reader);
        tokio::task::yield_now().await;
        let pushed = Instant::now();
        log.push(MAIN_AGENT, usage());
        let (id, at, reader) = waiting.await.unwrap();
        assert_eq!((id, at), (Some(3), pushed));
        let waiting = next(reader);
        tokio::task::yield_now().await;
        log.push(MAIN_AGENT, delta("c"));
        let (id, at, reader) = waiting.await.unwrap();
        assert_eq!((id, at), (Some(4), pushed));

        // So does a delta after a quiet spell.
        tokio::time::sleep(PACE * 3).await;
        let waiting = next(reader);
        tokio::task::yield_now().await;
        let pushed = Instant::now();
        log.push(MAIN_AGENT, delta("d"));
        let (id, at, reader) = waiting.await.unwrap();
        assert_eq!((id, at), (Some(5), pushed));

        // The terminal event is never held.
        let waiting = next(reader);
        tokio::task::yield_now().await;
        let pushed = Instant::now();
        log.push(MAIN_AGENT, failed());
        let (id, at, reader) = waiting.await.unwrap();
        assert_eq!((id, at), (Some(6), pushed));
        assert_eq!(next(reader).await.unwrap().0, None);
    }

    #[tokio::test]
    async fn a_cursor_at_the_end_of_a_finished_run_ends_at_once() {
        let log = RunLog::new("s");
        log.push(MAIN_AGENT, delta("a"));
        log.push(MAIN_AGENT, failed());
        assert_eq!(log.subscribe(2).count().await, 0);
        assert_eq!(log.subscribe(7).count().await, 0);
        assert_eq!(log.subscribe(0).count().await, 2);
        assert!(log.ends_by(2) && log.ends_by(7));
        assert!(!log.ends_by(1));
    }
}
