//! The `EventBus` contract (ports/src/event_bus.rs), run against both adapters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters::event_bus::{BusSettings, InProcessBus, RedisBus};
use ports::{
    ContentDelta, ContentKind, EventBus, EventBusError, EventEnvelope, EventPayload, MAIN_AGENT,
    MessageStart, RunCompleted, RunSummary, SessionStatus, StreamKey,
};

use crate::support;

/// Small limits so the cap and the TTL show within a test. The TTL leaves a loaded CI
/// machine ample time between the terminal append and the "still there" checks.
const SETTINGS: BusSettings = BusSettings {
    cap: 10,
    ttl: Duration::from_secs(2),
};
/// Guard against a hang; the waits under test are far shorter or far longer.
const GUARD: Duration = Duration::from_secs(5);

/// A bus plus the keys its test used, deleted afterwards where they outlive the process.
pub struct Fixture {
    bus: Arc<dyn EventBus>,
    settings: BusSettings,
    keys: Mutex<Vec<StreamKey>>,
    redis_url: Option<String>,
    /// The CA a `rediss://` test server's certificate is signed by.
    root_cert: Option<Vec<u8>>,
}

impl Fixture {
    fn bus(&self) -> &dyn EventBus {
        self.bus.as_ref()
    }

    /// A stream key no other test uses.
    fn key(&self) -> StreamKey {
        let key = StreamKey::for_session(&support::unique("evbus").into());
        self.keys.lock().unwrap().push(key.clone());
        key
    }
}

impl Drop for Fixture {
    /// Non-terminal test streams never expire, so they are deleted here (blocking I/O is
    /// fine at the end of a test).
    fn drop(&mut self) {
        let Some(url) = &self.redis_url else { return };
        let keys: Vec<String> = self
            .keys
            .get_mut()
            .unwrap()
            .iter()
            .map(|k| k.0.clone())
            .collect();
        if keys.is_empty() {
            return;
        }
        let client = match &self.root_cert {
            None => ::redis::Client::open(url.as_str()),
            Some(root_cert) => ::redis::Client::build_with_tls(
                url.as_str(),
                ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert.clone()),
                },
            ),
        };
        let deleted = client
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
            .and_then(|mut conn| ::redis::cmd("DEL").arg(&keys).query::<()>(&mut conn));
        if let Err(e) = deleted {
            eprintln!("event_bus::redis: could not delete test keys: {e}");
        }
    }
}

async fn in_process() -> Option<Fixture> {
    Some(Fixture {
        bus: Arc::new(InProcessBus::new(SETTINGS)),
        settings: SETTINGS,
        keys: Mutex::default(),
        redis_url: None,
        root_cert: None,
    })
}

async fn redis() -> Option<Fixture> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    redis_fixture("event_bus::redis", url, None).await
}

/// The same suite against a Redis that speaks TLS only (`rediss://`, the test CA trusted).
async fn redis_tls() -> Option<Fixture> {
    let (Ok(url), Ok(ca)) = (
        std::env::var("TEST_REDIS_TLS_URL"),
        std::env::var("TEST_TLS_CA"),
    ) else {
        return support::skip_or_fail(
            "event_bus::redis_tls",
            "TEST_REDIS_TLS_URL / TEST_TLS_CA are not set (tests/tls/start.sh starts the server)",
        );
    };
    let root_cert = std::fs::read(&ca).unwrap();
    redis_fixture("event_bus::redis_tls", url, Some(root_cert)).await
}

async fn redis_fixture(suite: &str, url: String, root_cert: Option<Vec<u8>>) -> Option<Fixture> {
    let bus = match RedisBus::with_root_cert(&url, root_cert.clone(), SETTINGS) {
        Ok(bus) => bus,
        Err(e) => return support::skip_or_fail(suite, &e.to_string()),
    };
    if let Err(e) = bus.health().await {
        return support::skip_or_fail(suite, &e.to_string());
    }
    Some(Fixture {
        bus: Arc::new(bus),
        settings: SETTINGS,
        keys: Mutex::default(),
        redis_url: Some(url),
        root_cert,
    })
}

crate::contract!(
    event_bus,
    [in_process => in_process(), redis => redis(), redis_tls => redis_tls()],
    [
        appends_in_order_with_ids_from_one,
        reads_after_cursor,
        missing_stream_is_not_found_until_first_append,
        rejects_gaps_and_duplicates_without_appending,
        batches_append_all_or_nothing,
        blocking_read_wakes_on_append,
        blocking_read_times_out_empty,
        keeps_only_the_newest_cap_events,
        expires_after_terminal_event,
        concurrent_writers_keep_their_own_order,
        health_is_ok,
    ]
);

/// A non-terminal event, cycling through a few payload types.
fn event(key: &StreamKey, id: u64) -> EventEnvelope {
    let payload = match id % 3 {
        0 => EventPayload::MessageStart(MessageStart {
            message_id: format!("m{id}"),
        }),
        1 => EventPayload::ContentDelta(ContentDelta {
            kind: ContentKind::Text,
            delta: format!("text {id} ✓"),
        }),
        _ => EventPayload::ContentDelta(ContentDelta {
            kind: ContentKind::Thinking,
            delta: format!("thought {id}"),
        }),
    };
    envelope(key, id, payload)
}

/// The run's last event, which starts the TTL.
fn terminal(key: &StreamKey, id: u64) -> EventEnvelope {
    envelope(
        key,
        id,
        EventPayload::RunCompleted(RunCompleted {
            status: SessionStatus::Committed,
            stop_reason: ports::StopReason::Completed,
            message: None,
            limit: None,
            run_summary: RunSummary::default(),
            pending_tool_calls: vec![],
        }),
    )
}

fn envelope(key: &StreamKey, id: u64, payload: EventPayload) -> EventEnvelope {
    EventEnvelope {
        event_id: id,
        session_id: key.0.clone(),
        agent_id: MAIN_AGENT.into(),
        timestamp: ports::now(),
        payload,
    }
}

/// Appends one event: a batch of one.
async fn append_one(
    bus: &dyn EventBus,
    key: &StreamKey,
    event: &EventEnvelope,
) -> Result<(), EventBusError> {
    bus.append_batch(key, &[Arc::new(event.clone())]).await
}

/// Appends events `ids` and returns them.
async fn append_all(
    bus: &dyn EventBus,
    key: &StreamKey,
    ids: std::ops::RangeInclusive<u64>,
) -> Vec<EventEnvelope> {
    let mut appended = Vec::new();
    for id in ids {
        let ev = event(key, id);
        append_one(bus, key, &ev).await.unwrap();
        appended.push(ev);
    }
    appended
}

fn ids(events: &[EventEnvelope]) -> Vec<u64> {
    events.iter().map(|e| e.event_id).collect()
}

async fn appends_in_order_with_ids_from_one(fx: &Fixture) {
    let key = fx.key();
    let appended = append_all(fx.bus(), &key, 1..=7).await;
    let got = fx.bus().read_after(&key, 0, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&got), (1..=7).collect::<Vec<_>>());
    assert_eq!(got, appended);
}

async fn reads_after_cursor(fx: &Fixture) {
    let key = fx.key();
    let appended = append_all(fx.bus(), &key, 1..=6).await;
    for k in 0..=6 {
        let got = fx.bus().read_after(&key, k, Duration::ZERO).await.unwrap();
        assert_eq!(got, appended[k as usize..], "after {k}");
    }
    // A cursor past the end is not an error, just nothing yet.
    assert_eq!(
        fx.bus().read_after(&key, 9, Duration::ZERO).await.unwrap(),
        vec![]
    );
}

async fn missing_stream_is_not_found_until_first_append(fx: &Fixture) {
    let key = fx.key();
    let read = fx.bus().read_after(&key, 0, Duration::ZERO).await;
    assert!(matches!(read, Err(EventBusError::NotFound)), "{read:?}");
    // Waiting does not change that: there is nothing to wait on.
    let read = fx
        .bus()
        .read_after(&key, 0, Duration::from_millis(200))
        .await;
    assert!(matches!(read, Err(EventBusError::NotFound)), "{read:?}");
    assert!(!fx.bus().exists(&key).await.unwrap());

    let first = event(&key, 1);
    append_one(fx.bus(), &key, &first).await.unwrap();
    assert!(fx.bus().exists(&key).await.unwrap());
    assert_eq!(
        fx.bus().read_after(&key, 0, Duration::ZERO).await.unwrap(),
        vec![first]
    );
}

async fn rejects_gaps_and_duplicates_without_appending(fx: &Fixture) {
    let key = fx.key();
    // A missing stream starts at 1.
    let got = append_one(fx.bus(), &key, &event(&key, 2)).await;
    assert!(
        matches!(got, Err(EventBusError::OutOfOrder { last: 0, got: 2 })),
        "{got:?}"
    );
    assert!(!fx.bus().exists(&key).await.unwrap());

    let appended = append_all(fx.bus(), &key, 1..=3).await;
    for bad in [5, 3, 2, 1] {
        let got = append_one(fx.bus(), &key, &event(&key, bad)).await;
        assert!(
            matches!(got, Err(EventBusError::OutOfOrder { last: 3, got }) if got == bad),
            "id {bad}: {got:?}"
        );
    }
    assert_eq!(
        fx.bus().read_after(&key, 0, Duration::ZERO).await.unwrap(),
        appended
    );
    // The stream still accepts the right next id.
    append_one(fx.bus(), &key, &event(&key, 4)).await.unwrap();
    assert_eq!(
        ids(&fx.bus().read_after(&key, 0, Duration::ZERO).await.unwrap()),
        vec![1, 2, 3, 4]
    );
}

async fn batches_append_all_or_nothing(fx: &Fixture) {
    let key = fx.key();
    let batch = |ids: std::ops::RangeInclusive<u64>| -> Vec<Arc<EventEnvelope>> {
        ids.map(|id| Arc::new(event(&key, id))).collect()
    };
    fx.bus().append_batch(&key, &[]).await.unwrap();
    assert!(
        !fx.bus().exists(&key).await.unwrap(),
        "an empty batch does nothing"
    );
    fx.bus().append_batch(&key, &batch(1..=3)).await.unwrap();
    append_one(fx.bus(), &key, &event(&key, 4)).await.unwrap();
    fx.bus().append_batch(&key, &batch(5..=6)).await.unwrap();
    assert_eq!(
        ids(&fx.bus().read_after(&key, 0, Duration::ZERO).await.unwrap()),
        vec![1, 2, 3, 4, 5, 6]
    );

    // A batch that does not continue the stream, or has a gap inside, appends nothing.
    let got = fx.bus().append_batch(&key, &batch(8..=9)).await;
    assert!(
        matches!(got, Err(EventBusError::OutOfOrder { last: 6, got: 8 })),
        "{got:?}"
    );
    let got = fx.bus().append_batch(&key, &batch(5..=7)).await;
    assert!(
        matches!(got, Err(EventBusError::OutOfOrder { last: 6, got: 5 })),
        "{got:?}"
    );
    let mut gapped = batch(7..=8);
    gapped.push(Arc::new(event(&key, 10)));
    let got = fx.bus().append_batch(&key, &gapped).await;
    assert!(
        matches!(got, Err(EventBusError::OutOfOrder { got: 10, .. })),
        "{got:?}"
    );
    assert_eq!(
        ids(&fx.bus().read_after(&key, 0, Duration::ZERO).await.unwrap()),
        vec![1, 2, 3, 4, 5, 6]
    );

    // A batch ending with the terminal event starts the TTL.
    let mut last = batch(7..=7);
    last.push(Arc::new(terminal(&key, 8)));
    fx.bus().append_batch(&key, &last).await.unwrap();
    let held = fx.bus().read_after(&key, 6, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&held), vec![7, 8]);
    assert!(held[1].is_terminal());
    tokio::time::sleep(fx.settings.ttl + Duration::from_secs(1)).await;
    assert!(!fx.bus().exists(&key).await.unwrap());
}

async fn blocking_read_wakes_on_append(fx: &Fixture) {
    let key = fx.key();
    append_all(fx.bus(), &key, 1..=1).await;
    let reader = tokio::spawn({
        let (bus, key) = (Arc::clone(&fx.bus), key.clone());
        async move { bus.read_after(&key, 1, Duration::from_secs(10)).await }
    });
    // Give the reader time to park, so the wake-up is what gets tested (it would pass
    // either way: an append before the read is simply returned).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = event(&key, 2);
    append_one(fx.bus(), &key, &second).await.unwrap();

    let got = tokio::time::timeout(GUARD, reader)
        .await
        .expect("the blocked reader was not woken by the append")
        .unwrap()
        .unwrap();
    assert_eq!(got, vec![second]);
}

async fn blocking_read_times_out_empty(fx: &Fixture) {
    let key = fx.key();
    append_all(fx.bus(), &key, 1..=2).await;
    let wait = Duration::from_millis(300);
    let started = tokio::time::Instant::now();
    let got = tokio::time::timeout(GUARD, fx.bus().read_after(&key, 2, wait))
        .await
        .expect("the read overran its wait")
        .unwrap();
    assert_eq!(got, vec![]);
    assert!(
        started.elapsed() >= wait - Duration::from_millis(50),
        "returned early: {:?}",
        started.elapsed()
    );
}

async fn keeps_only_the_newest_cap_events(fx: &Fixture) {
    let key = fx.key();
    let cap = fx.settings.cap as u64;
    let appended = append_all(fx.bus(), &key, 1..=cap + 5).await;
    let newest = appended[5..].to_vec();
    assert_eq!(ids(&newest), (6..=cap + 5).collect::<Vec<_>>());
    assert_eq!(
        fx.bus().read_after(&key, 0, Duration::ZERO).await.unwrap(),
        newest
    );
    // A cursor inside the dropped part gets what is still held.
    assert_eq!(
        fx.bus().read_after(&key, 3, Duration::ZERO).await.unwrap(),
        newest
    );
    assert_eq!(
        fx.bus().read_after(&key, 12, Duration::ZERO).await.unwrap(),
        appended[12..]
    );
    // Trimming forgets events, not the position: the next id is still cap + 6.
    let got = append_one(fx.bus(), &key, &event(&key, 1)).await;
    assert!(
        matches!(got, Err(EventBusError::OutOfOrder { last, got: 1 }) if last == cap + 5),
        "{got:?}"
    );
}

async fn expires_after_terminal_event(fx: &Fixture) {
    let finished = fx.key();
    let running = fx.key();
    let mut appended = append_all(fx.bus(), &finished, 1..=2).await;
    let last = terminal(&finished, 3);
    append_one(fx.bus(), &finished, &last).await.unwrap();
    appended.push(last);
    let still_running = append_all(fx.bus(), &running, 1..=2).await;

    assert!(fx.bus().exists(&finished).await.unwrap());
    assert_eq!(
        fx.bus()
            .read_after(&finished, 0, Duration::ZERO)
            .await
            .unwrap(),
        appended
    );

    tokio::time::sleep(fx.settings.ttl + Duration::from_secs(1)).await;
    assert!(!fx.bus().exists(&finished).await.unwrap());
    let read = fx.bus().read_after(&finished, 0, Duration::ZERO).await;
    assert!(matches!(read, Err(EventBusError::NotFound)), "{read:?}");
    assert!(fx.bus().exists(&running).await.unwrap());
    assert_eq!(
        fx.bus()
            .read_after(&running, 0, Duration::ZERO)
            .await
            .unwrap(),
        still_running
    );

    // An expired stream is gone entirely: a new run on the key starts again at 1.
    let restarted = event(&finished, 1);
    append_one(fx.bus(), &finished, &restarted).await.unwrap();
    assert_eq!(
        fx.bus()
            .read_after(&finished, 0, Duration::ZERO)
            .await
            .unwrap(),
        vec![restarted]
    );
}

async fn concurrent_writers_keep_their_own_order(fx: &Fixture) {
    let per_stream = fx.settings.cap as u64;
    let writers: Vec<_> = (0..20)
        .map(|_| {
            let (bus, key) = (Arc::clone(&fx.bus), fx.key());
            tokio::spawn(async move {
                let mut appended = Vec::new();
                for id in 1..=per_stream {
                    let ev = event(&key, id);
                    append_one(&*bus, &key, &ev).await.unwrap();
                    appended.push(ev);
                    tokio::task::yield_now().await;
                }
                (key, appended)
            })
        })
        .collect();
    for writer in writers {
        let (key, appended) = tokio::time::timeout(GUARD, writer).await.unwrap().unwrap();
        assert_eq!(
            fx.bus().read_after(&key, 0, Duration::ZERO).await.unwrap(),
            appended,
            "{key}"
        );
    }
}

async fn health_is_ok(fx: &Fixture) {
    fx.bus().health().await.unwrap();
}

/// TLS is checked, not just spoken: without the test CA the server's certificate is not
/// trusted, and a plain `redis://` to the TLS port gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_tls_refuses_an_untrusted_certificate_and_plain_tcp() {
    let Ok(url) = std::env::var("TEST_REDIS_TLS_URL") else {
        let _: Option<()> = support::skip_or_fail(
            "event_bus::redis_tls",
            "TEST_REDIS_TLS_URL is not set (tests/tls/start.sh starts the server)",
        );
        return;
    };
    let untrusted = RedisBus::new(&url, SETTINGS).unwrap();
    let error = untrusted.health().await.unwrap_err().to_string();
    assert!(
        error.to_lowercase().contains("certificate"),
        "an untrusted certificate is refused: {error}"
    );
    let plain = RedisBus::new(&url.replacen("rediss://", "redis://", 1), SETTINGS).unwrap();
    assert!(plain.health().await.is_err(), "plain TCP to the TLS port");
}
