//! Interrupt and steer (spec 05) over real HTTP: what the stream shows, what is committed,
//! that a shell command's processes die, and that steering reaches the model.

use std::time::Duration;

use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    Backend, MOCK_PRESET, MockApp, assert_run_stream, dialogue, eventually, gate_command,
    open_gate, position, process_alive, shell_call, text_input, text_of, types,
};

/// Interrupted while the model streams (a long answer, one word every 20 ms, that would
/// take 40 s): interrupt_received, then run_completed `interrupted`; the partial text is
/// committed and kept as history; the model stream is dropped; later interrupts are 200
/// while stopping and 404 once finished.
async fn interrupt_mid_stream(app: MockApp) {
    let words: Vec<String> = (0..2000).map(|i| format!("w{i} ")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let full: String = words.concat();
    app.mock.push(
        Script::new()
            .text_deltas(&words)
            .delay(Duration::from_millis(20)),
    );
    let mut stream = app.run_sse(app.new_run("Talk forever")).await;
    let head = stream
        .until(|e| e.is("content_delta") && e.payload()["delta"] == "w1 ")
        .await;
    let session = head[0].data["session_id"].as_str().unwrap().to_owned();
    assert_eq!(app.status(&session).await, "executing");
    assert_eq!(app.mock.open_streams(), 1, "the answer is still being sent");

    let path = format!("/api/sessions/{session}/interrupt");
    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"session_id": session, "interrupted": true}));
    // Right after: idempotent while stopping, or 404 when already finished.
    let (status, body) = app.post(&path, json!({})).await;
    match status {
        StatusCode::OK => assert_eq!(body, json!({"session_id": session, "interrupted": true})),
        StatusCode::NOT_FOUND => assert_eq!(body["error"], "not_found"),
        other => panic!("second interrupt: {other}: {body}"),
    }

    let mut events = head;
    events.extend(stream.all().await);
    assert_run_stream(&events, &session, 1);
    let interrupt = position(&events, "interrupt_received");
    assert_eq!(
        events.iter().filter(|e| e.is("interrupt_received")).count(),
        1,
        "{}",
        types(&events)
    );
    assert_eq!(interrupt, events.len() - 2, "{}", types(&events));
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_completed"), "{}", types(&events));
    assert_eq!(terminal.payload()["status"], "committed");
    assert_eq!(terminal.payload()["stop_reason"], "interrupted");
    let partial = text_of(&events);
    assert!(
        partial.starts_with("w0 w1 ") && partial.len() < full.len() && full.starts_with(&partial),
        "{partial}"
    );
    for done in events.iter().filter(|e| e.is("content_done")) {
        assert_eq!(done.payload()["text"], partial.as_str(), "{}", done.data);
    }

    assert_eq!(app.wait_finished(&session).await, "committed");
    let stored = app.session(&session).await;
    assert_eq!(stored["status"], "committed");
    assert_eq!(
        stored["display_messages"],
        json!([
            {"kind": "user", "text": "Talk forever"},
            {"kind": "assistant_text", "agent_id": "main", "text": partial}
        ])
    );
    // The model's response stream was dropped, not left hanging.
    let mock = &app.mock;
    eventually("the model stream to be closed", move || async move {
        (mock.open_streams() == 0).then_some(())
    })
    .await;

    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");
    let (status, body) = app
        .post(
            &format!("/api/conversations/{session}/interrupt"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"conversation_id": session, "interrupted": []}));
    let (status, body) = app
        .post(
            "/api/sessions/0190a0a0-0000-7000-8000-000000000000/interrupt",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The partial answer is history for the next run.
    app.mock.push(Script::text("Continuing.", 1));
    let next = app
        .run_sse(json!({"conversation_id": session, "input": crate::support::text_input("Go on")}))
        .await
        .all()
        .await;
    assert_eq!(next[0].payload()["parent_session_id"], session.as_str());
    assert_eq!(
        dialogue(&app.mock.requests().pop().unwrap()),
        crate::support::turns(&[
            ("user", "Talk forever"),
            ("assistant", partial.as_str()),
            ("user", "Go on")
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_mid_stream_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[]).await {
        interrupt_mid_stream(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_mid_stream_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[]).await {
        interrupt_mid_stream(app).await;
    }
}

/// Interrupted before the model sent anything (it answers with headers, then silence):
/// nothing was produced, so the session is `failed` with code `interrupted`.
async fn interrupt_before_output(app: MockApp) {
    app.mock.push(Script::text("never sent", 1).hang_after(0));
    let mut stream = app.run_sse(app.new_run("Say nothing")).await;
    let head = stream.until(|e| e.is("run_started")).await;
    let session = head[0].data["session_id"].as_str().unwrap().to_owned();
    let mock = &app.mock;
    eventually("the model request", move || async move {
        (mock.requests().len() == 1).then_some(())
    })
    .await;
    let (status, body) = app
        .post(&format!("/api/sessions/{session}/interrupt"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut events = head;
    events.extend(stream.all().await);
    assert_run_stream(&events, &session, 1);
    assert!(
        !events.iter().any(|e| e.is("content_delta")),
        "{}",
        types(&events)
    );
    assert_eq!(
        position(&events, "interrupt_received"),
        events.len() - 2,
        "{}",
        types(&events)
    );
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_failed"), "{}", types(&events));
    assert_eq!(terminal.payload()["code"], "interrupted");

    assert_eq!(app.wait_finished(&session).await, "failed");
    let stored = app.session(&session).await;
    assert_eq!(stored["status"], "failed");
    assert!(
        stored["error"].as_str().unwrap().starts_with("interrupted"),
        "{stored}"
    );
    let display = stored["display_messages"].as_array().unwrap();
    assert_eq!(display[0], json!({"kind": "user", "text": "Say nothing"}));
    assert_eq!(display.last().unwrap()["kind"], "error", "{stored}");
    assert_eq!(display.last().unwrap()["code"], "interrupted", "{stored}");
    assert_eq!(display.len(), 2, "{stored}");
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_before_output_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[]).await {
        interrupt_before_output(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_before_output_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[]).await {
        interrupt_before_output(app).await;
    }
}

/// Interrupted while a shell command runs (through the conversation): the command's
/// background child dies with it, the call is cancelled and what ran is committed.
async fn interrupt_mid_tool(app: MockApp) {
    app.mock.push(shell_call(
        "call_sleep",
        "sleep 30 & echo $! > child.pid; wait",
    ));
    let accepted = app.run_stream(app.new_run("Sleep a while")).await;
    let session = accepted["session_id"].as_str().unwrap().to_owned();
    let conversation = accepted["conversation_id"].as_str().unwrap().to_owned();
    let mut stream = app
        .attach(&format!("/api/sessions/{session}/events"), None)
        .await;
    let head = stream.until(|e| e.is("tool_call_start")).await;
    let pid_file = app.work.join("child.pid");
    let pid_file = &pid_file;
    let pid: u32 = eventually("the pid file", move || async move {
        std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
    .await;
    assert!(process_alive(pid), "the sleep runs");
    assert_eq!(app.status(&session).await, "executing");

    let (status, body) = app
        .post(
            &format!("/api/conversations/{conversation}/interrupt"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"conversation_id": conversation, "interrupted": [session]})
    );

    let mut events = head;
    events.extend(stream.all().await);
    assert_run_stream(&events, &session, 1);
    let result = &events[position(&events, "tool_call_result")];
    assert_eq!(result.payload()["tool_call_id"], "call_sleep");
    assert_eq!(result.payload()["is_error"], true);
    let end = &events[position(&events, "tool_call_end")];
    assert_eq!(end.payload()["status"], "cancelled");
    let interrupt = position(&events, "interrupt_received");
    assert!(
        position(&events, "tool_call_end") < interrupt && interrupt == events.len() - 2,
        "{}",
        types(&events)
    );
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_completed"), "{}", types(&events));
    assert_eq!(terminal.payload()["stop_reason"], "interrupted");
    assert_eq!(terminal.payload()["status"], "committed");

    eventually("the background sleep to be killed", move || async move {
        (!process_alive(pid)).then_some(())
    })
    .await;
    assert_eq!(app.wait_finished(&session).await, "committed");
    let stored = app.session(&session).await;
    let display = stored["display_messages"].as_array().unwrap();
    assert_eq!(display[0], json!({"kind": "user", "text": "Sleep a while"}));
    let call = display
        .iter()
        .find(|m| m["kind"] == "tool_call")
        .unwrap_or_else(|| panic!("no tool call in {stored}"));
    assert_eq!(call["tool_call_id"], "call_sleep");
    assert_eq!(call["status"], "cancelled");
    assert_eq!(
        app.mock.requests().len(),
        1,
        "no model request after the interrupt"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_mid_tool_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[]).await {
        interrupt_mid_tool(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_mid_tool_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[]).await {
        interrupt_mid_tool(app).await;
    }
}

/// Interrupted while one call of a turn runs and another waits for the caller (an
/// external tool): both are answered, cancelled, in the order the model made them, so the
/// next run sends a history a provider accepts (the mock refuses any other).
async fn interrupt_answers_every_call_in_order(app: MockApp) {
    let weather = json!({"name": "lookup_weather", "description": "Weather by city",
                         "parameters": {"type": "object",
                                        "properties": {"city": {"type": "string"}}}});
    app.mock.push(
        Script::new()
            .tool_call(0, "x1", "lookup_weather", &[r#"{"city":"Oslo"}"#])
            .tool_call(
                1,
                "s1",
                "shell",
                &[r#"{"command":"sleep 30 & echo $! > child.pid; wait"}"#],
            ),
    );
    let accepted = app
        .run_stream(
            json!({"preset_id": MOCK_PRESET, "input": text_input("weather, then wait"),
                           "external_tools": [weather]}),
        )
        .await;
    let session = accepted["session_id"].as_str().unwrap().to_owned();
    let conversation = accepted["conversation_id"].as_str().unwrap().to_owned();
    let pid_file = app.work.join("child.pid");
    let pid_file = &pid_file;
    let pid: u32 = eventually("the pid file", move || async move {
        std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
    .await;
    let (status, body) = app
        .post(
            &format!("/api/conversations/{conversation}/interrupt"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.wait_finished(&session).await, "committed");
    eventually("the sleep to be killed", move || async move {
        (!process_alive(pid)).then_some(())
    })
    .await;

    app.mock.push(Script::text("Both were cancelled.", 1));
    let events = app
        .run_sse(json!({"conversation_id": conversation, "input": text_input("and now?")}))
        .await
        .all()
        .await;
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_completed"), "{terminal:?}");
    let seen = dialogue(&app.mock.requests().pop().unwrap());
    let tools: Vec<&str> = seen
        .iter()
        .filter(|(role, _)| role == "tool")
        .map(|(_, text)| text.as_str())
        .collect();
    assert_eq!(tools.len(), 2, "{seen:?}");
    assert_eq!(tools[0], "interrupted: the call was not run", "{seen:?}");
    assert_eq!(seen.last().unwrap().1, "and now?");
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_answers_every_call_in_order_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[]).await {
        interrupt_answers_every_call_in_order(app).await;
    }
}

/// Steering while a tool runs: queued once per message id, injected at the step boundary
/// (steering_injected), and sent to the model in its next request; refused when empty
/// (422) and when the session is not running (404).
async fn steer_mid_run(app: MockApp) {
    app.mock.push(shell_call("call_gate", &gate_command("go")));
    app.mock.push(Script::text("Banana!", 2));
    let mut stream = app.run_sse(app.new_run("Wait, then answer")).await;
    let head = stream.until(|e| e.is("tool_call_start")).await;
    let session = head[0].data["session_id"].as_str().unwrap().to_owned();
    let path = format!("/api/sessions/{session}/steer");

    let (status, body) = app
        .post(
            &path,
            json!({"input": text_input("also say banana"), "message_id": "m1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"session_id": session, "message_id": "m1", "queued": true})
    );
    let (status, body) = app
        .post(
            &path,
            json!({"input": text_input("also say banana"), "message_id": "m1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"session_id": session, "message_id": "m1", "queued": false})
    );
    for empty in ["", "   "] {
        let (status, body) = app.post(&path, json!({"input": text_input(empty)})).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{empty:?}: {body}"
        );
        assert_eq!(body["error"], "validation_failed");
        assert_eq!(body["details"]["fields"][0]["field"], "input");
    }
    let (status, body) = app.post(&path, json!({"message_id": "m2"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no input: {body}");
    assert_eq!(body["error"], "invalid_body");

    open_gate(&app.work, "go");
    let mut events = head;
    events.extend(stream.all().await);
    assert_run_stream(&events, &session, 1);
    let steered: Vec<_> = events
        .iter()
        .filter(|e| e.is("steering_injected"))
        .collect();
    assert_eq!(steered.len(), 1, "{}", types(&events));
    assert_eq!(
        steered[0].payload(),
        &json!({"message_id": "m1", "text": "also say banana"})
    );
    let at = position(&events, "steering_injected");
    assert!(
        position(&events, "tool_call_end") < at,
        "injected after the tool turn: {}",
        types(&events)
    );
    assert!(
        events[at..].iter().any(|e| e.is("content_delta")),
        "the model answered after it: {}",
        types(&events)
    );
    assert_eq!(text_of(&events), "Banana!");
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_completed"), "{}", types(&events));
    assert_eq!(terminal.payload()["stop_reason"], "completed");

    let requests = app.mock.requests();
    assert_eq!(requests.len(), 2);
    let first = dialogue(&requests[0]);
    assert!(
        first.iter().all(|(_, text)| !text.contains("banana")),
        "{first:?}"
    );
    let second = dialogue(&requests[1]);
    let (role, text) = second.last().unwrap();
    assert_eq!(
        (role.as_str(), text.as_str()),
        ("user", "also say banana"),
        "{second:?}"
    );
    assert_eq!(
        second.iter().filter(|(_, t)| t.contains("banana")).count(),
        1,
        "queued once: {second:?}"
    );

    assert_eq!(app.wait_finished(&session).await, "committed");
    let stored = app.session(&session).await;
    let display = stored["display_messages"].as_array().unwrap();
    assert!(
        display.contains(&json!({"kind": "user", "text": "also say banana"})),
        "{stored}"
    );
    let (status, body) = app
        .post(
            &path,
            json!({"input": text_input("too late"), "message_id": "m3"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");
    let (status, body) = app
        .post(
            &format!("/api/conversations/{session}/steer"),
            json!({"input": text_input("too late")}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .post(
            "/api/sessions/0190a0a0-0000-7000-8000-000000000000/steer",
            json!({"input": text_input("nobody")}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn steer_mid_run_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[]).await {
        steer_mid_run(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn steer_mid_run_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[]).await {
        steer_mid_run(app).await;
    }
}
