//! In-process event bus: per-stream ring buffers in this process's memory.
//!
//! For single-node deployments and tests. Invariant: a stream holds the contiguous ids
//! `last_id - len + 1 ..= last_id`, so a cursor read is an index computation. The map sits
//! behind a `std::sync::Mutex` that is never held across an `.await`; blocking readers wait on
//! the stream's `Notify` instead. Time is `tokio::time::Instant`, so TTLs follow
//! `tokio::time::pause()` in tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ports::{EventBus, EventBusError, EventEnvelope, StreamKey};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{BusSettings, MAX_WAIT};

/// Minimum time between sweeps of expired streams: often enough that memory stays bounded
/// by the live streams, rarely enough that appends do not pay a full scan each.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Event streams held in memory.
pub struct InProcessBus {
    cap: usize,
    ttl: Duration,
    state: Mutex<State>,
}

struct State {
    streams: HashMap<StreamKey, Stream>,
    next_sweep: Instant,
}

struct Stream {
    /// `Arc` so a read clones pointers under the lock and deep-copies after releasing it.
    events: VecDeque<Arc<EventEnvelope>>,
    last_id: u64,
    /// Set by the terminal event; from then on the stream counts as absent.
    expires_at: Option<Instant>,
    /// Wakes blocking readers on every append.
    appended: Arc<Notify>,
}

impl InProcessBus {
    /// An empty bus keeping `settings.cap` events per stream for `settings.ttl` after the
    /// terminal event.
    pub fn new(settings: BusSettings) -> Self {
        Self {
            cap: settings.cap.max(1),
            ttl: settings.ttl,
            state: Mutex::new(State {
                streams: HashMap::new(),
                next_sweep: Instant::now() + SWEEP_EVERY,
            }),
        }
    }

    /// Every critical section leaves the map consistent (no `.await`, no fallible step
    /// half-way), so a panic elsewhere while locked cannot have corrupted it.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live stream's events after `after` and its wake-up handle; `None` when the
    /// stream is absent or expired.
    fn snapshot(
        &self,
        key: &StreamKey,
        after: u64,
    ) -> Option<(Vec<Arc<EventEnvelope>>, Arc<Notify>)> {
        let now = Instant::now();
        let state = self.lock();
        let stream = state.streams.get(key).filter(|s| s.is_live(now))?;
        Some((stream.after(after), Arc::clone(&stream.appended)))
    }
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessBus")
            .field("cap", &self.cap)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// `OutOfOrder` unless `events` continue `last` without gaps.
fn check_sequence(last: u64, events: &[Arc<EventEnvelope>]) -> Result<(), EventBusError> {
    let mut expected = last;
    for event in events {
        if expected.checked_add(1) != Some(event.event_id) {
            return Err(EventBusError::OutOfOrder {
                last: expected,
                got: event.event_id,
            });
        }
        expected = event.event_id;
    }
    Ok(())
}

impl State {
    fn sweep(&mut self, now: Instant) {
        if now >= self.next_sweep {
            self.streams.retain(|_, s| !s.is_expired(now));
            self.next_sweep = now + SWEEP_EVERY;
        }
    }
}

impl Stream {
    fn new() -> Self {
        Self {
            events: VecDeque::new(),
            last_id: 0,
            expires_at: None,
            appended: Arc::new(Notify::new()),
        }
    }

    fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    fn is_live(&self, now: Instant) -> bool {
        !self.is_expired(now) && !self.events.is_empty()
    }

    /// Held events with id > `after`, oldest first.
    fn after(&self, after: u64) -> Vec<Arc<EventEnvelope>> {
        let held = self.events.len();
        let newer = usize::try_from(self.last_id.saturating_sub(after)).unwrap_or(usize::MAX);
        self.events
            .iter()
            .skip(held - newer.min(held))
            .cloned()
            .collect()
    }

    /// Appends an event already checked to be `last_id + 1` (or 1 on an expired stream).
    fn push(&mut self, event: Arc<EventEnvelope>, cap: usize, ttl: Duration, now: Instant) {
        if self.is_expired(now) {
            // An expired stream is absent to callers; the new run starts from scratch but
            // keeps the Notify, so readers parked on the old handle still hear about it.
            self.events.clear();
            self.expires_at = None;
        }
        while self.events.len() >= cap {
            self.events.pop_front();
        }
        self.last_id = event.event_id;
        let terminal = event.is_terminal();
        self.events.push_back(event);
        if terminal {
            // A TTL too large for the clock simply never expires.
            self.expires_at = now.checked_add(ttl);
        }
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn append_batch(
        &self,
        key: &StreamKey,
        events: &[Arc<EventEnvelope>],
    ) -> Result<(), EventBusError> {
        if events.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let appended = {
            let mut state = self.lock();
            state.sweep(now);
            let last = state
                .streams
                .get(key)
                .filter(|s| !s.is_expired(now))
                .map_or(0, |s| s.last_id);
            check_sequence(last, events)?;
            let stream = state.streams.entry(key.clone()).or_insert_with(Stream::new);
            for event in events {
                stream.push(Arc::clone(event), self.cap, self.ttl, now);
            }
            Arc::clone(&stream.appended)
        };
        appended.notify_waiters();
        Ok(())
    }

    async fn read_after(
        &self,
        key: &StreamKey,
        after: u64,
        wait: Duration,
    ) -> Result<Vec<EventEnvelope>, EventBusError> {
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        let (events, mut appended) = self.snapshot(key, after).ok_or(EventBusError::NotFound)?;
        if !events.is_empty() || wait.is_zero() {
            return Ok(deep_copy(&events));
        }
        loop {
            let renewed = {
                // Register interest before looking again, so an append between the look
                // and the wait still wakes us.
                let notified = appended.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // A stream that expires while we wait ends the wait empty, as on Redis; the
                // next read reports NotFound.
                let Some((events, handle)) = self.snapshot(key, after) else {
                    return Ok(Vec::new());
                };
                if !events.is_empty() {
                    return Ok(deep_copy(&events));
                }
                if Arc::ptr_eq(&handle, &appended) {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Ok(Vec::new());
                    }
                    None
                } else {
                    // Swept and recreated while we looked away: wait on the new stream.
                    Some(handle)
                }
            };
            if let Some(handle) = renewed {
                appended = handle;
            }
        }
    }

    async fn exists(&self, key: &StreamKey) -> Result<bool, EventBusError> {
        let now = Instant::now();
        Ok(self.lock().streams.get(key).is_some_and(|s| s.is_live(now)))
    }

    async fn health(&self) -> Result<(), EventBusError> {
        Ok(())
    }
}

/// Copies events out once the lock is released.
fn deep_copy(events: &[Arc<EventEnvelope>]) -> Vec<EventEnvelope> {
    events.iter().map(|e| EventEnvelope::clone(e)).collect()
}

#[cfg(test)]
mod tests {
    use ports::{EventPayload, InterruptReceived, MAIN_AGENT, RunFailed};

    use super::*;

    fn envelope(id: u64, payload: EventPayload) -> EventEnvelope {
        EventEnvelope {
            event_id: id,
            session_id: "s".into(),
            agent_id: MAIN_AGENT.into(),
            timestamp: ports::now(),
            payload,
        }
    }

    /// The contract suite sees expired streams as absent; this checks they also leave memory.
    #[tokio::test]
    async fn appends_sweep_expired_streams_from_memory() {
        let bus = InProcessBus::new(BusSettings {
            cap: 10,
            ttl: Duration::from_millis(10),
        });
        let (done, live) = (StreamKey("done".into()), StreamKey("live".into()));
        let failed = RunFailed {
            code: "x".into(),
            message: "y".into(),
        };
        let ended = envelope(1, EventPayload::RunFailed(failed));
        bus.append_batch(&done, &[Arc::new(ended)]).await.unwrap();
        tokio::time::sleep(SWEEP_EVERY + Duration::from_millis(50)).await;

        let interrupt = InterruptReceived { reason: None };
        let ev = envelope(1, EventPayload::InterruptReceived(interrupt));
        bus.append_batch(&live, &[Arc::new(ev)]).await.unwrap();
        let kept: Vec<StreamKey> = bus.lock().streams.keys().cloned().collect();
        assert_eq!(kept, vec![live]);
    }
}
