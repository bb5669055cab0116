//! Admission control (`MAX_CONCURRENT_RUNS`): beyond the cap a run is refused at once with
//! 429 `too_many_runs` and `Retry-After`, on every way to start one, and taken again as
//! soon as an earlier run finishes.

use mock_llm::Script;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    Backend, MOCK_PRESET, MockApp, assert_error_shape, gate_command, open_gate, shell_call,
};

/// A refused start: 429, the error shape with `too_many_runs`, `Retry-After: 1`.
async fn refused(app: &MockApp, path: &str, body: Value) -> Value {
    let resp = app
        .req(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
    let retry_after = resp.headers().get("retry-after").cloned();
    assert_eq!(
        retry_after.as_ref().and_then(|v| v.to_str().ok()),
        Some("1"),
        "{path}"
    );
    resp.json().await.unwrap()
}

async fn beyond_the_cap_runs_are_refused_until_one_finishes(app: MockApp) {
    app.mock.push(shell_call("gate_a", &gate_command("a")));
    app.mock.push(shell_call("gate_b", &gate_command("b")));
    app.mock.push(Script::text("first done", 1));
    let (status, first) = app.post("/api/conversations/run", app.new_run("one")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, second) = app.post("/api/conversations/run", app.new_run("two")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");

    for path in [
        "/api/conversations/run",
        "/api/conversations/run/stream",
        "/api/conversations/run/wait",
        "/api/sessions/execute",
    ] {
        let body = refused(&app, path, app.new_run("three")).await;
        assert_error_shape(&body);
        assert_eq!(body["error"], "too_many_runs", "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("2 runs are going"),
            "{body}"
        );
    }
    // The clients people already run read it too: OpenAI's shape on /v1.
    let resp = app
        .req(Method::POST, "/v1/chat/completions")
        .json(&json!({"model": MOCK_PRESET, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_runs", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    // Nothing was started by the refusals: two conversations only.
    let (_, listed) = app.get("/api/conversations/list").await;
    assert_eq!(
        listed["conversations"].as_array().unwrap().len(),
        2,
        "{listed}"
    );

    open_gate(&app.work, "a");
    let first_session = first["session_id"].as_str().unwrap();
    assert_eq!(app.wait_finished(first_session).await, "committed");
    app.mock.push(Script::text("third done", 1));
    let (status, third) = app
        .post("/api/conversations/run/wait", app.new_run("three"))
        .await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(third["status"], "committed", "{third}");
    open_gate(&app.work, "b");
    app.mock.push(Script::text("second done", 1));
    let second_session = second["session_id"].as_str().unwrap();
    assert_eq!(app.wait_finished(second_session).await, "committed");
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_the_cap_runs_are_refused_until_one_finishes_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[("MAX_CONCURRENT_RUNS", "2")]).await {
        beyond_the_cap_runs_are_refused_until_one_finishes(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_the_cap_runs_are_refused_until_one_finishes_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[("MAX_CONCURRENT_RUNS", "2")]).await {
        beyond_the_cap_runs_are_refused_until_one_finishes(app).await;
    }
}
