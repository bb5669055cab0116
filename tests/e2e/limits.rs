//! A preset's `limits` through the API: each cap ends its run committed with
//! `stop_reason: limit_reached` naming the cap, after a `limit_near` warning at 80 %; a
//! run's `config_override.limits` may lower a cap, never raise it.

use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::model_controls::{create_preset, run_wait};
use crate::support::{MockApp, SseEvent, on_both_backends, shell_call, text_input};

on_both_backends!(each_limit_ends_its_run_and_names_itself);

/// A preset on the mock model with the shell and these caps.
async fn capped(app: &MockApp, id: &str, limits: Value) {
    let work = app.work.display().to_string();
    create_preset(
        app,
        json!({
            "preset_id": id, "name": id, "model": {"name": "openai:gpt-test"},
            "toolsets": [{"toolset_name": "shell"}],
            "environment": {"default_path": work},
            "limits": limits,
        }),
    )
    .await;
}

/// Streams a run; its `warning` messages and its terminal payload.
async fn run(app: &MockApp, body: Value) -> (Vec<String>, Value) {
    let events: Vec<SseEvent> = app.run_sse(body).await.all().await;
    let warnings = events
        .iter()
        .filter(|e| e.is("warning"))
        .map(|e| {
            assert_eq!(e.payload()["code"], "limit_near");
            e.payload()["message"].as_str().unwrap().to_owned()
        })
        .collect();
    let terminal = events.last().expect("a terminal event").payload().clone();
    (warnings, terminal)
}

fn assert_stopped_by(terminal: &Value, limit: &str) {
    assert_eq!(terminal["status"], "committed", "{terminal}");
    assert_eq!(terminal["stop_reason"], "limit_reached", "{terminal}");
    assert_eq!(terminal["limit"], limit, "{terminal}");
    assert!(
        terminal["message"].as_str().unwrap().contains(limit),
        "{terminal}"
    );
}

async fn each_limit_ends_its_run_and_names_itself(app: MockApp) {
    // Model requests: the third request is never made.
    capped(&app, "requests", json!({"max_model_requests": 2})).await;
    for i in 0..2 {
        app.mock.push(shell_call(&format!("r{i}"), "true"));
    }
    let (warnings, terminal) = run(
        &app,
        json!({"preset_id": "requests", "input": text_input("go")}),
    )
    .await;
    assert_stopped_by(&terminal, "max_model_requests");
    assert_eq!(terminal["run_summary"]["usage"]["model_requests"], 2);
    assert!(warnings.is_empty(), "1 of 2 is under 80 %: {warnings:?}");
    assert_eq!(app.mock.requests().len(), 2);

    // Tokens: 120 per request; warned at 240 of 250, stopped at 360.
    capped(&app, "tokens", json!({"max_total_tokens": 250})).await;
    for i in 0..3 {
        app.mock
            .push(shell_call(&format!("t{i}"), "true").usage(100, 20));
    }
    let (warnings, terminal) = run(
        &app,
        json!({"preset_id": "tokens", "input": text_input("go")}),
    )
    .await;
    assert_stopped_by(&terminal, "max_total_tokens");
    assert_eq!(terminal["run_summary"]["usage"]["total_tokens"], 360);
    assert_eq!(
        warnings,
        ["max_total_tokens: 240 of 250 tokens used; the run stops at the limit"]
    );
    assert_eq!(app.mock.requests().len(), 5);

    // Tool calls: the second step's calls past the cap are answered, not run.
    capped(&app, "calls", json!({"max_tool_calls": 2})).await;
    app.mock.push(shell_call("c0", "echo one"));
    app.mock.push(
        Script::new()
            .tool_call(0, "c1", "shell", &[r#"{"command":"echo two"}"#])
            .tool_call(1, "c2", "shell", &[r#"{"command":"touch never"}"#]),
    );
    let (warnings, terminal) = run(
        &app,
        json!({"preset_id": "calls", "input": text_input("go")}),
    )
    .await;
    assert_stopped_by(&terminal, "max_tool_calls");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        !app.work.join("never").exists(),
        "the call past the cap did not run"
    );

    // Duration: a command that would take 30 s is stopped at the 1 s cap.
    capped(&app, "clock", json!({"max_duration_secs": 1})).await;
    app.mock.push(shell_call("d0", "sleep 30"));
    let started = std::time::Instant::now();
    let result = run_wait(
        &app,
        json!({"preset_id": "clock", "input": text_input("go")}),
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(result["status"], "committed", "{result}");
    assert_eq!(result["stop_reason"], "limit_reached");
    assert_eq!(result["limit"], "max_duration_secs");

    // An override lowers a cap, never raises it; the service default (50 requests)
    // counts as the cap of a preset without one.
    let (status, body) = app
        .post(
            "/api/conversations/run",
            json!({"preset_id": "calls", "input": text_input("go"),
                   "config_override": {"limits": {"max_tool_calls": 3, "max_model_requests": 51}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "validation_failed");
    let fields: Vec<&str> = body["details"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "config_override.limits.max_model_requests",
            "config_override.limits.max_tool_calls"
        ]
    );
    app.mock.push(shell_call("o0", "true"));
    let result = run_wait(
        &app,
        json!({"preset_id": "calls", "input": text_input("go"),
               "config_override": {"limits": {"max_tool_calls": 1}}}),
    )
    .await;
    assert_eq!(result["limit"], "max_tool_calls", "{result}");
}
