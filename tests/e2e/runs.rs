//! Runs over real HTTP (spec 01, 04, 06): a run answered as an event stream, its session
//! record, continuing and forking a conversation, and refused run requests.

use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    Backend, MockApp, TestApp, assert_run_stream, dialogue, position, text_input, text_of, turns,
    types,
};

/// The event stream of a first run, its session record, a continuation that sends the
/// history to the model, and a fork from the first session that sends only its history.
async fn run_continue_and_fork(app: MockApp) {
    // Turn 1: a new conversation.
    app.mock
        .push(Script::text("Hello there, friend!", 4).usage(12, 4));
    let events = app.run_sse(app.new_run("Say hello")).await.all().await;
    let first = &events[0];
    assert!(first.is("run_started"), "{}", types(&events));
    let s1 = first.data["session_id"].as_str().unwrap().to_owned();
    assert_run_stream(&events, &s1, 1);
    assert_eq!(
        first.payload()["conversation_id"],
        s1.as_str(),
        "a root's conversation id is its own"
    );
    assert_eq!(first.payload()["transport"], "sse");
    assert_eq!(first.payload()["session_type"], "agent");
    assert_eq!(first.payload()["preset_id"], "mock");
    assert!(
        first.payload().get("parent_session_id").is_none(),
        "{}",
        first.data
    );
    assert!(events.iter().all(|e| e.data["agent_id"] == "main"));

    let (start, delta, done, end, usage) = (
        position(&events, "message_start"),
        position(&events, "content_delta"),
        position(&events, "content_done"),
        position(&events, "message_end"),
        position(&events, "usage_snapshot"),
    );
    assert!(
        0 < start && start < delta && delta < done && done < end && end < usage,
        "{}",
        types(&events)
    );
    let deltas: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is("content_delta"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(deltas.len(), 4, "{}", types(&events));
    assert!(deltas.iter().all(|i| start < *i && *i < done));
    assert_eq!(text_of(&events), "Hello there, friend!");
    assert_eq!(events[done].payload()["text"], "Hello there, friend!");
    assert_eq!(events[done].payload()["kind"], "text");
    assert_eq!(
        events[start].payload()["message_id"],
        events[end].payload()["message_id"]
    );

    let terminal = events.last().unwrap();
    assert!(terminal.is("run_completed"), "{}", types(&events));
    assert_eq!(terminal.payload()["status"], "committed");
    assert_eq!(terminal.payload()["stop_reason"], "completed");
    let expected_usage = json!({"total_tokens": 16, "prompt_tokens": 12, "completion_tokens": 4,
        "model_requests": 1, "cache_read_tokens": 0, "cache_write_tokens": 0});
    assert_eq!(terminal.payload()["run_summary"]["usage"], expected_usage);
    assert_eq!(events[usage].payload()["usage"], expected_usage);

    let session = app.session(&s1).await;
    assert_eq!(session["status"], "committed", "{session}");
    assert_eq!(session["conversation_id"], s1.as_str());
    assert_eq!(session["transport"], "sse");
    assert_eq!(session["session_type"], "agent");
    assert!(
        session.get("spawned_by").is_none() && session.get("subagent_name").is_none(),
        "only async subagent sessions have a spawner and a name: {session}"
    );
    assert_eq!(session["preset_id"], "mock");
    assert!(session.get("parent_session_id").is_none(), "{session}");
    assert!(session.get("error").is_none(), "{session}");
    assert_eq!(session["run_summary"]["usage"], expected_usage);
    assert_eq!(
        session["run_summary"]["duration_ms"],
        terminal.payload()["run_summary"]["duration_ms"]
    );
    assert_eq!(
        session["display_messages"],
        json!([
            {"kind": "user", "text": "Say hello"},
            {"kind": "assistant_text", "agent_id": "main", "text": "Hello there, friend!"}
        ])
    );
    assert_eq!(app.status(&s1).await, "committed");
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(sent.body["model"], "gpt-test");
    assert_eq!(dialogue(&sent), turns(&[("user", "Say hello")]));

    // Turn 2: continue the conversation; the model sees the first turn.
    let conversation = s1.clone();
    app.mock.push(Script::text("Second answer.", 2));
    let events = app
        .run_sse(json!({"conversation_id": conversation, "input": text_input("And again")}))
        .await
        .all()
        .await;
    let s2 = events[0].data["session_id"].as_str().unwrap().to_owned();
    assert_ne!(s2, s1);
    assert_run_stream(&events, &s2, 1);
    assert_eq!(events[0].payload()["parent_session_id"], s1.as_str());
    assert_eq!(
        events[0].payload()["conversation_id"],
        conversation.as_str()
    );
    assert_eq!(events.last().unwrap().payload()["status"], "committed");
    assert_eq!(text_of(&events), "Second answer.");
    assert_eq!(app.mock.requests().len(), 2);
    assert_eq!(
        dialogue(&app.mock.requests().pop().unwrap()),
        turns(&[
            ("user", "Say hello"),
            ("assistant", "Hello there, friend!"),
            ("user", "And again")
        ])
    );
    let second = app.session(&s2).await;
    assert_eq!(second["parent_session_id"], s1.as_str());
    assert_eq!(second["conversation_id"], conversation.as_str());
    assert_eq!(second["status"], "committed");
    assert_eq!(
        second["display_messages"],
        json!([
            {"kind": "user", "text": "And again"},
            {"kind": "assistant_text", "agent_id": "main", "text": "Second answer."}
        ])
    );

    // Fork from the FIRST session: a new conversation with only the first turn's history.
    let sessions_before = app
        .get(&format!("/api/conversations/{conversation}/sessions"))
        .await
        .1;
    let turns_before = app
        .get(&format!("/api/conversations/{conversation}/turns"))
        .await
        .1;
    assert_eq!(
        app.session_ids(&conversation).await,
        [s1.clone(), s2.clone()]
    );
    let turn_list: Vec<(&str, &Value)> = turns_before["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["session_id"].as_str().unwrap(), &t["display_messages"]))
        .collect();
    assert_eq!(
        turn_list,
        [
            (s1.as_str(), &session["display_messages"]),
            (s2.as_str(), &second["display_messages"])
        ],
        "the transcript, oldest session first"
    );
    let (status, lean) = app
        .get(&format!(
            "/api/sessions/{s1}/get?include_display_messages=false"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{lean}");
    assert!(lean.get("display_messages").is_none(), "{lean}");
    assert_eq!(lean["run_summary"], session["run_summary"]);
    app.mock.push(Script::text("Forked answer.", 3));
    let fork = app
        .open(
            &format!("/api/conversations/{conversation}/fork/stream"),
            Some(&json!({"from_session_id": s1, "input": text_input("Fork question")})),
            None,
        )
        .await;
    let events = crate::support::SseStream::new(fork).await.all().await;
    let s3 = events[0].data["session_id"].as_str().unwrap().to_owned();
    assert_run_stream(&events, &s3, 1);
    assert_eq!(
        events[0].payload()["conversation_id"],
        s3.as_str(),
        "a fork's conversation id is its session id"
    );
    assert_eq!(events[0].payload()["parent_session_id"], s1.as_str());
    assert_eq!(events.last().unwrap().payload()["status"], "committed");
    assert_eq!(app.mock.requests().len(), 3);
    assert_eq!(
        dialogue(&app.mock.requests().pop().unwrap()),
        turns(&[
            ("user", "Say hello"),
            ("assistant", "Hello there, friend!"),
            ("user", "Fork question")
        ]),
        "only the history up to the forked session"
    );
    let forked = app.session(&s3).await;
    assert_eq!(forked["conversation_id"], s3.as_str());
    assert_eq!(forked["parent_session_id"], s1.as_str());
    assert_eq!(app.session_ids(&s3).await, [s3.as_str()]);
    let (status, detail) = app.get(&format!("/api/conversations/{s3}/get")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(
        detail["latest_session"],
        json!({"session_id": s3, "status": "committed"})
    );
    assert!(detail.get("active_session").is_none(), "{detail}");

    // Without from_session_id a fork starts from the latest committed session.
    app.mock.push(Script::text("Forked again.", 1));
    let events = app
        .open(
            &format!("/api/conversations/{conversation}/fork"),
            Some(&json!({"input": text_input("Fork two")})),
            None,
        )
        .await;
    let (status, accepted) = crate::support::read(events).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let s4 = accepted["session_id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["conversation_id"], s4.as_str());
    assert_eq!(app.wait_finished(&s4).await, "committed");
    assert_eq!(app.session(&s4).await["parent_session_id"], s2.as_str());
    assert_eq!(
        dialogue(&app.mock.requests().pop().unwrap()),
        turns(&[
            ("user", "Say hello"),
            ("assistant", "Hello there, friend!"),
            ("user", "And again"),
            ("assistant", "Second answer."),
            ("user", "Fork two")
        ])
    );

    // The original conversation is untouched.
    assert_eq!(
        app.get(&format!("/api/conversations/{conversation}/sessions"))
            .await
            .1,
        sessions_before
    );
    assert_eq!(
        app.get(&format!("/api/conversations/{conversation}/turns"))
            .await
            .1,
        turns_before
    );
    let (_, detail) = app
        .get(&format!("/api/conversations/{conversation}/get"))
        .await;
    assert_eq!(
        detail["latest_session"],
        json!({"session_id": s2, "status": "committed"})
    );
    // Newest activity first; a new run moves its conversation to the top.
    let listed = || async {
        let (status, list) = app.get("/api/conversations/list").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["conversation_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed().await,
        [s4.clone(), s3.clone(), conversation.clone()]
    );
    app.mock.push(Script::text("Third answer.", 1));
    let events = app
        .run_sse(json!({"conversation_id": conversation, "input": text_input("Once more")}))
        .await
        .all()
        .await;
    assert_eq!(events.last().unwrap().payload()["status"], "committed");
    assert_eq!(listed().await, [conversation.clone(), s4, s3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_continue_and_fork_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[]).await {
        run_continue_and_fork(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_continue_and_fork_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[]).await {
        run_continue_and_fork(app).await;
    }
}

/// Everything a caller can see of the stored conversations.
async fn stored(app: &TestApp, conversation_id: &str) -> (Value, Value) {
    let (status, list) = app.get("/api/conversations/list").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let (status, sessions) = app
        .get(&format!("/api/conversations/{conversation_id}/sessions"))
        .await;
    assert_eq!(status, StatusCode::OK, "{sessions}");
    (list, sessions)
}

/// Refused run requests create nothing: no conversation, no session.
#[tokio::test(flavor = "multi_thread")]
async fn refused_runs_create_nothing_local() {
    let Some(app) = TestApp::start(Backend::Local, &[]).await else {
        return;
    };
    // One conversation on the built-in echo model, to continue with bad requests.
    let events = app
        .run_sse(json!({"input": text_input("ping")}))
        .await
        .all()
        .await;
    let conversation = events[0].data["session_id"].as_str().unwrap().to_owned();
    assert!(
        events.last().unwrap().is("run_completed"),
        "{}",
        types(&events)
    );
    let before = stored(&app, &conversation).await;
    assert_eq!(before.0["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(before.1["sessions"].as_array().unwrap().len(), 1);

    let fields = |body: &Value| -> Vec<String> {
        body["details"]["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("no details.fields: {body}"))
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_owned())
            .collect()
    };
    for target in [Value::Null, Value::String(conversation.clone())] {
        let body = |extra: Value| {
            let mut body = json!({"conversation_id": target});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        let (status, err) = app
            .post("/api/conversations/run", body(json!({"input": []})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"], "validation_failed");
        assert_eq!(fields(&err), ["input"]);

        let (status, err) = app.post("/api/conversations/run", body(json!({}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no input: {err}");
        assert_eq!(fields(&err), ["input"]);

        let binary = json!({"input": [{"type": "binary", "data": "not base64!!", "mime_type": "text/plain", "name": "a.txt"}]});
        let (status, err) = app.post("/api/conversations/run", body(binary)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"], "validation_failed");
        assert_eq!(fields(&err), ["input[0].data"]);

        let video = json!({"input": [{"type": "video", "url": "https://example.com/v.mp4"}]});
        let (status, err) = app.post("/api/conversations/run", body(video)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["error"], "invalid_body");

        let preset = json!({"preset_id": "no-such-preset", "input": text_input("hi")});
        let (status, err) = app.post("/api/conversations/run", body(preset)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"], "validation_failed");
        assert_eq!(fields(&err), ["preset_id"]);

        // The same refusals with transport stream: no 202, nothing created.
        let (status, err) = app
            .post("/api/conversations/run", body(json!({"input": []})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    }
    for missing in ["0190a0a0-0000-7000-8000-000000000000", "not-an-id"] {
        let (status, err) = app
            .post(
                "/api/conversations/run",
                json!({"conversation_id": missing, "input": text_input("hi")}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
        assert_eq!(err["error"], "not_found");
        let (status, err) = app
            .post(
                &format!("/api/conversations/{missing}/fork"),
                json!({"input": text_input("hi")}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
        assert_eq!(err["error"], "not_found");
    }
    assert_eq!(stored(&app, &conversation).await, before);
}

/// The three run operations (spec 06): `/run` answers 202, `/run/wait` the outcome once
/// the run ended, and an events reconnect whose cursor is the terminal event answers 204
/// while an earlier cursor still replays.
#[tokio::test(flavor = "multi_thread")]
async fn one_operation_per_answer_local() {
    let Some(app) = MockApp::start(Backend::Local, &[]).await else {
        return;
    };
    app.mock
        .push(Script::text("The answer is 42.", 3).usage(10, 5));
    let (status, result) = app
        .post("/api/conversations/run/wait", app.new_run("Answer"))
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["status"], "committed", "{result}");
    assert_eq!(result["stop_reason"], "completed");
    assert_eq!(result["final_message"], "The answer is 42.");
    assert_eq!(result["run_summary"]["usage"]["total_tokens"], 15);
    assert!(result.get("error").is_none() && result.get("pending_tool_calls").is_none());
    let session = result["session_id"].as_str().unwrap().to_owned();
    assert_eq!(result["conversation_id"], session.as_str());
    assert_eq!(app.session(&session).await["status"], "committed");

    app.mock.push(Script::text("Accepted.", 2));
    let accepted = app.run_stream(app.new_run("Start")).await;
    let session = accepted["session_id"].as_str().unwrap().to_owned();
    assert_eq!(app.wait_finished(&session).await, "committed");
    let path = format!("/api/sessions/{session}/events");
    let all = app.attach(&path, None).await.all().await;
    let terminal = all.last().unwrap();
    assert!(terminal.is("run_completed"), "{}", types(&all));
    let last_id = terminal.data["event_id"].as_u64().unwrap();
    let done = app.open(&path, None, Some(last_id)).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let rest = app.attach(&path, Some(last_id - 1)).await.all().await;
    assert_eq!(rest.len(), 1);
    assert!(rest[0].is("run_completed"));
}

/// Safe retries (spec 06): a repeat with the same `Idempotency-Key` and body answers with
/// the same run in whichever shape it asks for; another body with the key is 409; a request
/// that was refused leaves its key free.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_run_is_the_same_run_local() {
    let Some(app) = MockApp::start(Backend::Local, &[]).await else {
        return;
    };
    let post = |path: &'static str, key: &'static str, body: Value| {
        let app = &app;
        async move {
            let resp = app
                .req(reqwest::Method::POST, path)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            crate::support::read(resp).await
        }
    };
    app.mock.push(Script::text("Only once.", 2));
    let body = app.new_run("Once please");
    let (status, first) = post("/api/conversations/run", "key-1", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let session = first["session_id"].as_str().unwrap().to_owned();
    let (status, again) = post("/api/conversations/run", "key-1", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again, first, "the same run, not a second one");

    // The same request in the other shapes: the run's result, its events.
    let (status, result) = post("/api/conversations/run/wait", "key-1", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["session_id"], session.as_str());
    assert_eq!(result["final_message"], "Only once.");
    let replay = app
        .req(reqwest::Method::POST, "/api/conversations/run/stream")
        .header("Idempotency-Key", "key-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let events = crate::support::SseStream::new(replay).await.all().await;
    assert_eq!(events[0].data["session_id"], session.as_str());
    let last = events.last().unwrap().data["event_id"].as_u64().unwrap();
    let done = app
        .req(reqwest::Method::POST, "/api/conversations/run/stream")
        .header("Idempotency-Key", "key-1")
        .header("Last-Event-ID", last.to_string())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let (_, list) = app.get("/api/conversations/list").await;
    assert_eq!(list["conversations"].as_array().unwrap().len(), 1, "{list}");

    // Another body with a used key.
    let (status, err) = post("/api/conversations/run", "key-1", app.new_run("Other")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"], "idempotency_conflict");

    // A refused request leaves its key free for the corrected one.
    let (status, _) = post("/api/conversations/run", "key-2", json!({"input": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.mock.push(Script::text("Fixed.", 1));
    let (status, fixed) = post("/api/conversations/run", "key-2", app.new_run("Fixed")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{fixed}");
    assert_ne!(fixed["session_id"], session.as_str());

    // Keys are 1 to 255 characters.
    let long: &'static str = Box::leak("k".repeat(256).into_boxed_str());
    let (status, err) = post("/api/conversations/run", long, app.new_run("x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "invalid_parameter");
}
