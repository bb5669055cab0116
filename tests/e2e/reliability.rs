//! Reliability under faults (spec 07): provider errors are retried a bounded number of times
//! and never hang a run; a Redis outage during runs costs only the stream transport; a
//! database outage while a run finishes delays its commit instead of losing it.

use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    Backend, ChaosProxy, MockApp, SseEvent, assert_run_stream, eventually, gate_command, open_gate,
    position, shell_call, target_of, test_redis_url, text_of, types, via,
};

async fn run_to_end(app: &MockApp, text: &str) -> Vec<SseEvent> {
    let events = app.run_sse(app.new_run(text)).await.all().await;
    let session = events[0].data["session_id"].as_str().unwrap();
    assert_run_stream(&events, session, 1);
    events
}

/// 429s honour Retry-After and are retried; after the last attempt the run fails with
/// the provider's code, and the model was asked exactly as often as the policy allows.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_retried_then_fail_the_run() {
    let app = MockApp::start(Backend::Local, &[]).await.unwrap();
    app.mock.push(Script::rate_limited(0));
    app.mock.push(Script::rate_limited(0));
    app.mock.push(Script::text("third time lucky", 2));
    let events = run_to_end(&app, "hi").await;
    assert!(
        events.last().unwrap().is("run_completed"),
        "{}",
        types(&events)
    );
    assert_eq!(text_of(&events), "third time lucky");
    assert_eq!(app.mock.requests().len(), 3);

    for _ in 0..4 {
        app.mock.push(Script::rate_limited(0));
    }
    let events = run_to_end(&app, "again").await;
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_failed"), "{}", types(&events));
    assert_eq!(terminal.payload()["code"], "model_rate_limited");
    assert_eq!(app.mock.requests().len(), 3 + 4, "four attempts, no more");
    let session = terminal.data["session_id"].as_str().unwrap();
    assert_eq!(app.wait_finished(session).await, "failed");
}

/// `MODEL_MAX_RETRIES=0`: one attempt only; `run_failed` carries the provider's own status
/// and message, and a provider echoing the key it got never shows it.
#[tokio::test(flavor = "multi_thread")]
async fn run_failed_carries_the_providers_message_without_the_key() {
    const KEY: &str = "sk-test-secret-0123456789abcdef";
    let app = MockApp::start(
        Backend::Local,
        &[("MODEL_MAX_RETRIES", "0"), ("OPENAI_API_KEY", KEY)],
    )
    .await
    .unwrap();
    app.mock.push(Script::rate_limited(0));
    let events = run_to_end(&app, "hi").await;
    let terminal = events.last().unwrap();
    assert_eq!(terminal.payload()["code"], "model_rate_limited");
    let message = terminal.payload()["message"].as_str().unwrap();
    assert!(
        message.contains("HTTP 429: Rate limit reached, please slow down"),
        "{message}"
    );
    assert_eq!(app.mock.requests().len(), 1, "no retry");

    app.mock.push(Script::error(
        401,
        &format!("Incorrect API key provided: {KEY}. You can find your API key at …"),
    ));
    let events = run_to_end(&app, "again").await;
    let terminal = events.last().unwrap();
    assert_eq!(terminal.payload()["code"], "model_auth");
    let message = terminal.payload()["message"].as_str().unwrap();
    assert!(
        message.contains("HTTP 401: Incorrect API key provided"),
        "{message}"
    );
    assert!(!message.contains(KEY), "{message}");
    let session = terminal.data["session_id"].as_str().unwrap();
    let (_, stored) = app.get(&format!("/api/sessions/{session}/get")).await;
    assert!(!stored.to_string().contains(KEY), "{stored}");
}

/// A 500 before any content is retried; the caller sees one clean answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_is_retried_transparently() {
    let app = MockApp::start(Backend::Local, &[]).await.unwrap();
    app.mock.push(Script::server_error());
    app.mock.push(Script::text("recovered", 2));
    let events = run_to_end(&app, "hi").await;
    assert!(
        events.last().unwrap().is("run_completed"),
        "{}",
        types(&events)
    );
    assert_eq!(text_of(&events), "recovered");
    assert_eq!(
        events.iter().filter(|e| e.is("message_start")).count(),
        1,
        "the failed attempt left no trace in the stream"
    );
}

/// A stream cut after content has reached the caller fails the run (a retry would repeat
/// the content); what arrived is kept in the transcript with the error.
#[tokio::test(flavor = "multi_thread")]
async fn a_cut_stream_fails_the_run_and_keeps_the_partial_answer() {
    let app = MockApp::start(Backend::Local, &[]).await.unwrap();
    app.mock
        .push(Script::new().text_deltas(&["half ", "an answer"]).cut());
    let events = run_to_end(&app, "hi").await;
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_failed"), "{}", types(&events));
    assert_eq!(terminal.payload()["code"], "model_stream_cut");
    assert_eq!(app.mock.requests().len(), 1, "not retried after content");
    let session = terminal.data["session_id"].as_str().unwrap();
    let stored = app.session(session).await;
    assert_eq!(stored["status"], "failed");
    let display = stored["display_messages"].as_array().unwrap();
    assert_eq!(display[1]["text"], "half an answer");
    assert_eq!(display[2]["kind"], "error");
    assert_eq!(display[2]["code"], "model_stream_cut");
}

/// A provider that goes silent mid-answer cannot hang the run: after
/// MODEL_IDLE_TIMEOUT_SECS the run fails.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_provider_fails_the_run_after_the_idle_timeout() {
    let app = MockApp::start(Backend::Local, &[("MODEL_IDLE_TIMEOUT_SECS", "1")])
        .await
        .unwrap();
    app.mock
        .push(Script::new().text_deltas(&["thinking about it"]).hang());
    let events = run_to_end(&app, "hi").await;
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_failed"), "{}", types(&events));
    assert!(
        terminal.payload()["code"]
            .as_str()
            .unwrap()
            .starts_with("model_"),
        "{}",
        terminal.data
    );
    assert_eq!(text_of(&events), "thinking about it");
    assert_eq!(app.mock.requests().len(), 1, "not retried after content");
}

/// Redis goes away while runs go on: health says so, the stream transport answers 503,
/// an sse run in flight finishes from the in-process fan-out, and once Redis is back the
/// stream transport works again without a restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_redis_outage_costs_only_the_stream_transport() {
    let Some(()) = crate::support::redis_available().await else {
        return;
    };
    let redis = test_redis_url();
    let proxy = ChaosProxy::start(target_of(&redis)).await;
    let url = via(&redis, proxy.addr);
    let app = MockApp::start(Backend::Local, &[("REDIS_URL", &url)])
        .await
        .unwrap();
    let accepted = app.run_stream(app.new_run("before")).await;
    let first = accepted["session_id"].as_str().unwrap();
    let events = app
        .attach(&format!("/api/sessions/{first}/events"), None)
        .await
        .all()
        .await;
    assert_run_stream(&events, first, 1);

    app.mock
        .push(shell_call("wait", &gate_command("redis-gate")));
    app.mock.push(Script::text("done waiting", 1));
    let mut running = app.run_sse(app.new_run("wait for the gate")).await;
    let head = running.until(|e| e.is("tool_call_start")).await;
    proxy.cut();

    let (status, health) = app.health().await;
    assert_eq!(status, StatusCode::OK, "only the database makes health 503");
    assert_eq!(health["event_bus"], "error");
    assert_eq!(health["status"], "degraded");
    let (status, body) = app
        .post(
            "/api/conversations/run",
            json!({"preset_id": "mock", "input": [{"type": "text", "text": "refused"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");

    open_gate(&app.work, "redis-gate");
    let mut events = head;
    events.extend(running.all().await);
    let session = events[0].data["session_id"].as_str().unwrap();
    assert_run_stream(&events, session, 1);
    assert!(
        events.last().unwrap().is("run_completed"),
        "{}",
        types(&events)
    );
    assert!(position(&events, "tool_call_result") < events.len() - 1);
    assert_eq!(app.wait_finished(session).await, "committed");

    proxy.restore();
    eventually("the bus to reconnect", || async {
        (app.health().await.1["event_bus"] == "connected").then_some(())
    })
    .await;
    let accepted = app.run_stream(app.new_run("after")).await;
    let last = accepted["session_id"].as_str().unwrap();
    let events = app
        .attach(&format!("/api/sessions/{last}/events"), None)
        .await
        .all()
        .await;
    assert_run_stream(&events, last, 1);
    assert!(events.last().unwrap().is("run_completed"));
}

/// The database goes away while a run is finishing: the commit waits for it (bounded
/// retries) and lands once it is back; the terminal event comes after the commit.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_while_finishing_delays_the_commit_not_loses_it() {
    let Some(schema) = adapters::testing::PgSchema::create("e2e_commit").await else {
        return;
    };
    let proxy = ChaosProxy::start(target_of(&schema.url)).await;
    let url = via(&schema.url, proxy.addr);
    let app = MockApp::start(Backend::Local, &[("DATABASE_URL", &url)])
        .await
        .unwrap();
    app.mock.push(shell_call("wait", &gate_command("db-gate")));
    app.mock.push(Script::text("finished", 1));
    let mut stream = app.run_sse(app.new_run("work")).await;
    let mut events = stream.until(|e| e.is("tool_call_start")).await;
    let session = events[0].data["session_id"].as_str().unwrap().to_owned();

    proxy.cut();
    open_gate(&app.work, "db-gate");
    // The answer streams while the commit waits for the database.
    events.extend(stream.until(|e| e.is("content_done")).await);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    proxy.restore();
    events.extend(stream.all().await);
    assert_run_stream(&events, &session, 1);
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_completed"), "{}", types(&events));
    assert_eq!(app.session(&session).await["status"], "committed");
}
