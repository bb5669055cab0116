//! SIGTERM with a run in flight (spec 07): the service refuses new runs, gives the running
//! one the grace period, then interrupts it, commits what it produced and exits 0; the
//! session is finished, not left to startup recovery.

use std::time::{Duration, Instant};

use mock_llm::{MockLlm, Script};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::crash::Service;
use crate::support::{TOKEN, gate_command, mock_preset, text_input};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_interrupts_after_the_grace_period_commits_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mock = MockLlm::start().await;
    let env: Vec<(String, String)> = [
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("AUTH_TOKEN", TOKEN.to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/runtime.db", dir.path().display()),
        ),
        (
            "STATE_STORE_PATH",
            dir.path().join("state").display().to_string(),
        ),
        ("OPENAI_API_KEY", "k".to_owned()),
        ("OPENAI_BASE_URL", mock.base_url()),
        ("SHUTDOWN_GRACE_SECS", "1".to_owned()),
        ("PATH", "/usr/bin:/bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut service = Service::start(dir.path(), &env, &dir.path().join("first.log"));
    let (status, body) = service
        .post(
            "/api/presets/create",
            mock_preset(&work.display().to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

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
            "/api/conversations/run",
            Some(json!({"preset_id": "mock", "input": text_input("wait")})),
        )
        .await;
    let started = events.until(|e| e.is("tool_call_start")).await;
    let session = started[0].data["session_id"].as_str().unwrap().to_owned();

    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // During the grace period new runs are refused with 503.
    tokio::time::sleep(Duration::from_millis(200)).await;
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
    let texts: Vec<&str> = stored["display_messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.contains(&"Let me wait."), "{stored}");
}
