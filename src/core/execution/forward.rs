//! Copies a run's events from its log to the event bus, so any run can be re-attached
//! (spec 04). It runs beside the agent and never holds it up: when the bus is slow or down
//! the forwarder falls behind and catches up from the log once the bus answers again.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ports::{EventBus, EventBusError, EventEnvelope, Metrics, SessionId, StreamKey};
use tokio::time::Instant;

use super::meter::RunMeter;
use super::registry::Registry;
use super::run_log::RunLog;

/// How long the forwarder keeps retrying once the run has finished; after that the events
/// it could not deliver are given up (the committed session still has them, compressed).
pub const GIVE_UP_AFTER_END: Duration = Duration::from_secs(60);

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Most events sent to the bus in one append.
const MAX_BATCH: usize = 256;

/// Pause after an append while the run goes on, so the next append carries what streamed
/// meanwhile. Live readers are served from the log, not the bus, so this costs them
/// nothing; it turns one bus round trip per delta into one per linger under load.
const LINGER: Duration = Duration::from_millis(50);

/// Forwards every event of `log` to `key` in order, then tells the registry the log may go.
/// Events that piled up while an append was in flight, or during the linger after it, go
/// together in the next one.
pub async fn forward(
    log: Arc<RunLog>,
    bus: Arc<dyn EventBus>,
    key: StreamKey,
    registry: Arc<Registry>,
    metrics: Arc<dyn Metrics>,
) {
    let mut batches = log.subscribe(0).ready_chunks(MAX_BATCH);
    let mut meter = RunMeter::new(metrics.clone());
    let mut delivered = true;
    while let Some(batch) = batches.next().await {
        meter.observe(&batch);
        if !append_with_retry(&*bus, &key, batch, &log, &*metrics).await {
            delivered = false;
            break;
        }
        if !log.is_finished() {
            tokio::time::sleep(LINGER).await;
        }
    }
    if !delivered {
        tracing::warn!(session_id = %log.session_id(), stream = %key, "gave up forwarding events to the bus");
    }
    registry.flushed(&SessionId::from(log.session_id()));
}

/// Appends one batch, retrying while the bus is unavailable. False when giving up.
async fn append_with_retry(
    bus: &dyn EventBus,
    key: &StreamKey,
    mut batch: Vec<Arc<EventEnvelope>>,
    log: &RunLog,
    metrics: &dyn Metrics,
) -> bool {
    let mut backoff = FIRST_BACKOFF;
    let mut deadline: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let appended = bus.append_batch(key, &batch).await;
        metrics.bus_append(started.elapsed());
        match appended {
            Ok(()) => return true,
            // An earlier attempt did land (its answer was lost): send only what is missing.
            Err(EventBusError::OutOfOrder { last, got }) if last >= got => {
                batch.retain(|e| e.event_id > last);
                if batch.is_empty() {
                    return true;
                }
            }
            Err(e) => {
                if deadline.is_none() && log.is_finished() {
                    deadline = Some(Instant::now() + GIVE_UP_AFTER_END);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return false;
                }
                if matches!(e, EventBusError::OutOfOrder { .. }) {
                    // A gap on the bus cannot be repaired by retrying.
                    tracing::error!(error = %e, stream = %key, "event bus refused an event");
                    return false;
                }
                tracing::warn!(error = %e, stream = %key, "event bus append failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ports::mocks::MockEventBus;
    use ports::{EventPayload, MAIN_AGENT, RunFailed, Usage, UsageSnapshot};

    use super::*;

    fn usage() -> EventPayload {
        EventPayload::UsageSnapshot(UsageSnapshot {
            usage: Usage::default(),
        })
    }

    fn run_failed() -> EventPayload {
        EventPayload::RunFailed(RunFailed {
            code: "c".into(),
            message: "m".into(),
        })
    }

    /// Forwards session `s`'s log to `bus` until it gives up or the terminal event is on it.
    async fn forward_to(bus: MockEventBus, log: Arc<RunLog>, registry: Arc<Registry>) {
        forward(
            log,
            Arc::new(bus),
            StreamKey::for_session(&"s".into()),
            registry,
            Arc::new(ports::NoMetrics),
        )
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_delays_events_but_loses_none() {
        let log = RunLog::new("s");
        let registry = Arc::new(Registry::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(3));
        let mut bus = MockEventBus::new();
        {
            let seen = seen.clone();
            bus.expect_append_batch().returning(move |_, batch| {
                let mut left = failures.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    return Err(EventBusError::Unavailable("down".into()));
                }
                seen.lock()
                    .unwrap()
                    .extend(batch.iter().map(|e| e.event_id));
                Ok(())
            });
        }
        log.push(MAIN_AGENT, usage());
        log.push(MAIN_AGENT, usage());
        log.push(MAIN_AGENT, usage());
        log.push(MAIN_AGENT, run_failed());
        forward_to(bus, log, registry).await;
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3, 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bus_down_for_good_is_given_up_after_the_run_ends() {
        let log = RunLog::new("s");
        let registry = Arc::new(Registry::new());
        let mut bus = MockEventBus::new();
        bus.expect_append_batch()
            .returning(|_, _| Err(EventBusError::Unavailable("down".into())));
        log.push(MAIN_AGENT, run_failed());
        let started = Instant::now();
        forward_to(bus, log, registry).await;
        assert!(started.elapsed() >= GIVE_UP_AFTER_END);
    }

    #[tokio::test]
    async fn a_lost_answer_is_not_appended_twice() {
        let log = RunLog::new("s");
        log.push(MAIN_AGENT, usage());
        log.push(MAIN_AGENT, usage());
        log.push(MAIN_AGENT, run_failed());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let mut bus = MockEventBus::new();
        {
            let sent = sent.clone();
            let mut first = true;
            bus.expect_append_batch().returning(move |_, batch| {
                let ids: Vec<u64> = batch.iter().map(|e| e.event_id).collect();
                sent.lock().unwrap().push(ids.clone());
                if std::mem::take(&mut first) {
                    // The first two landed before the answer was lost.
                    return Err(EventBusError::OutOfOrder {
                        last: 2,
                        got: ids[0],
                    });
                }
                Ok(())
            });
        }
        forward_to(bus, log, Arc::new(Registry::new())).await;
        assert_eq!(*sent.lock().unwrap(), vec![vec![1, 2, 3], vec![3]]);
    }
}
