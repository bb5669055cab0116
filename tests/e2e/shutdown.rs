//! SIGTERM with a run in flight (spec 07): the service refuses new runs, gives the running
//! one the grace period, then interrupts it, commits what it produced and exits 0; the
//! session is finished, not left to startup recovery.

use std::time::{Duration, Instant};

use adapters::event_bus::{BusSettings, RedisBus};
use adapters::testing::PgSchema;
use mock_llm::{MockLlm, Script};
use ports::{EventBus, EventPayload, StopReason, StreamKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::crash::Service;
use crate::support::{
    TOKEN, gate_command, mock_preset, open_gate, redis_available, test_redis_url, text_input,
};

/// The service's environment on the mock model: `vars` on top of loopback, the test token
/// and local state under `dir/state`.
fn mock_env(
    dir: &std::path::Path,
    mock: &MockLlm,
    vars: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("AUTH_TOKEN".into(), TOKEN.into()),
        (
            "STATE_STORE_PATH".into(),
            dir.join("state").display().to_string(),
        ),
        ("OPENAI_API_KEY".into(), "k".into()),
        ("OPENAI_BASE_URL".into(), mock.base_url()),
        ("PATH".into(), "/usr/bin:/bin".into()),
    ];
    env.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

/// Starts the binary in `dir` with `env` and creates the mock preset working in
/// `dir/work`.
async fn start_with_mock_preset(
    dir: &std::path::Path,
    env: &[(String, String)],
    log: &str,
) -> Service {
    let service = Service::start(dir, env, &dir.join(log));
    let work = dir.join("work");
    let (status, body) = service
        .post(
            "/api/presets/create",
            mock_preset(&work.display().to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    service
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_interrupts_after_the_grace_period_commits_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mock = MockLlm::start().await;
    let db = format!("sqlite://{}/runtime.db", dir.path().display());
    let env = mock_env(
        dir.path(),
        &mock,
        &[
            ("DATABASE_URL", db),
            ("SHUTDOWN_GRACE_SECS", "1".to_owned()),
        ],
    );
    let mut service = start_with_mock_preset(dir.path(), &env, "first.log").await;

    // The model says something, then runs a command that waits for a gate never opened.
    mock.push(Script::new().text_deltas(&["Let me wait."]).tool_call(
        0,
        "c1",
        "shell",
        &[&json!({"command": gate_command("never")}).to_string()],
    ));
    let mut events = service
        .sse(
            Method::POST,
            "/api/conversations/run/stream",
            Some(json!({"preset_id": "mock", "input": text_input("wait")})),
        )
        .await;
    let started = events.until(|e| e.is("tool_call_start")).await;
    let session = started[0].data["session_id"].as_str().unwrap().to_owned();

    let ready = || async {
        let resp = reqwest::get(format!("{}/api/health/ready", service.base()))
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json::<Value>().await.unwrap())
    };
    let (status, before) = ready().await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["draining"], false);

    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // During the grace period new runs are refused with 503, and readiness says so.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, draining) = ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{draining}");
    assert_eq!(draining["draining"], true);
    assert_eq!(draining["database"], "connected");
    let (status, health) = service.get("/api/health").await;
    assert_eq!(status, StatusCode::OK, "health keeps its answer: {health}");
    assert_eq!(health["draining"], true);
    let (status, body) = service
        .post(
            "/api/conversations/run",
            json!({"preset_id": "mock", "input": text_input("another")}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");

    // The open stream sees the interrupt and the terminal event.
    let rest = events.all().await;
    assert!(rest.iter().any(|e| e.is("interrupt_received")), "{rest:?}");
    let terminal = rest.last().unwrap();
    assert!(terminal.is("run_completed"), "{}", terminal.data);
    assert_eq!(terminal.payload()["stop_reason"], "interrupted");

    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = service.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(1),
        "the grace period was given"
    );
    drop(service);

    let again = Service::start(dir.path(), &env, &dir.path().join("second.log"));
    let (_, stored) = again.get(&format!("/api/sessions/{session}/get")).await;
    assert_eq!(stored["status"], "committed", "{stored}");
    assert!(stored.get("error").is_none(), "not an orphan: {stored}");
    let said = stored["display_messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["text"] == "Let me wait.");
    assert!(said, "{stored}");
}

/// How the run under test meets the shutdown.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// It is still running when the grace period ends, so it is interrupted.
    Interrupted,
    /// It finishes during the grace period, and the service exits as soon as it has.
    FinishesInGrace,
}

/// SIGTERM with the PostgreSQL + Redis backend and a `stream` run nobody is attached to:
/// the service exits only once the run's events, terminal one included, are on Redis.
async fn sigterm_leaves_every_event_on_the_bus(ending: Ending) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let Some(schema) = PgSchema::create("e2e_shutdown").await else {
        return;
    };
    let Some(()) = redis_available().await else {
        return;
    };
    let mock = MockLlm::start().await;
    let env = mock_env(
        dir.path(),
        &mock,
        &[
            ("DATABASE_URL", schema.url.clone()),
            ("REDIS_URL", test_redis_url()),
            ("SHUTDOWN_GRACE_SECS", "2".to_owned()),
        ],
    );
    let mut service = start_with_mock_preset(dir.path(), &env, "service.log").await;

    // The model says something, then runs a command that waits for a gate; once the gate
    // opens it answers.
    mock.push(Script::new().text_deltas(&["Let me wait."]).tool_call(
        0,
        "c1",
        "shell",
        &[&json!({"command": gate_command("gate")}).to_string()],
    ));
    mock.push(Script::text("Done waiting.", 3));
    let (status, accepted) = service
        .post(
            "/api/conversations/run",
            json!({"preset_id": "mock", "input": text_input("wait")}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let session = accepted["session_id"].as_str().unwrap().to_owned();
    let mut events = service
        .sse(
            Method::GET,
            &format!("/api/sessions/{session}/events"),
            None,
        )
        .await;
    events.until(|e| e.is("tool_call_start")).await;
    // Nobody stays attached: no open request keeps the service up after the run ends.
    drop(events);

    std::process::Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .unwrap();
    if matches!(ending, Ending::FinishesInGrace) {
        open_gate(&work, "gate");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = service.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");

    let bus = RedisBus::new(&test_redis_url(), BusSettings::default()).unwrap();
    let key = StreamKey::for_session(&session.as_str().into());
    let stored = bus.read_after(&key, 0, Duration::ZERO).await.unwrap();
    let ids: Vec<u64> = stored.iter().map(|e| e.event_id).collect();
    let expected: Vec<u64> = (1..=stored.len() as u64).collect();
    assert_eq!(ids, expected, "the stream is whole from the start");
    let last = stored.last().unwrap();
    let EventPayload::RunCompleted(completed) = &last.payload else {
        panic!(
            "the stream ends with {:?}, not the terminal event",
            last.payload
        );
    };
    let expected = match ending {
        Ending::Interrupted => StopReason::Interrupted,
        Ending::FinishesInGrace => StopReason::Completed,
    };
    assert_eq!(completed.stop_reason, expected, "{:?}", last.payload);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_leaves_an_interrupted_runs_terminal_event_on_redis() {
    sigterm_leaves_every_event_on_the_bus(Ending::Interrupted).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_leaves_a_run_finishing_in_grace_whole_on_redis() {
    sigterm_leaves_every_event_on_the_bus(Ending::FinishesInGrace).await;
}
