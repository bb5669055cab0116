//! Transports and the bridge (spec 04): runs with transport `stream`, attaching to a run's
//! events from the start or after a cursor (header or query), while it runs and after it
//! ended, the stream's expiry, client disconnects and one run per conversation.

use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    Backend, MockApp, SseEvent, assert_run_stream, gate_command, open_gate, position, shell_call,
    text_input, text_of, types,
};

fn datas(events: &[SseEvent]) -> Vec<&serde_json::Value> {
    events.iter().map(|e| &e.data).collect()
}

/// A `stream` run answers 202 at once; its events replay in full from both events
/// endpoints, after a cursor given as header or query, and not at all after the terminal
/// event. An sse run can be re-attached the same way after it ended.
async fn stream_transport_and_replay(app: MockApp) {
    app.mock.push(Script::text("one two three four", 4));
    let accepted = app.run_stream(app.new_run("Count")).await;
    let session = accepted["session_id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["conversation_id"], session.as_str());
    assert_eq!(accepted["stream_key"], format!("runs:{session}"));
    assert_eq!(
        accepted.as_object().unwrap().len(),
        3,
        "exactly {{session_id, conversation_id, stream_key}}: {accepted}"
    );

    let events_path = format!("/api/sessions/{session}/events");
    let all = app.attach(&events_path, None).await.all().await;
    assert_run_stream(&all, &session, 1);
    assert!(all[0].is("run_started"));
    assert_eq!(all[0].payload()["transport"], "stream");
    let last = all.last().unwrap();
    assert!(last.is("run_completed"), "{}", types(&all));
    assert_eq!(last.payload()["status"], "committed");
    assert_eq!(text_of(&all), "one two three four");
    let n = last.id;
    assert!(n > 4, "{}", types(&all));

    // The same events again, identical, from both endpoints.
    let again = app.attach(&events_path, None).await.all().await;
    assert_eq!(datas(&again), datas(&all));
    let by_conversation = app
        .attach(&format!("/api/conversations/{session}/events"), None)
        .await
        .all()
        .await;
    assert_eq!(datas(&by_conversation), datas(&all));

    // After a cursor: header, query, and the header winning over the query.
    for cursor in [1, 3, n - 1] {
        let rest = app.attach(&events_path, Some(cursor)).await.all().await;
        assert_eq!(
            datas(&rest),
            datas(&all[cursor as usize..]),
            "Last-Event-ID: {cursor}"
        );
        let rest = app
            .attach(&format!("{events_path}?last_event_id={cursor}"), None)
            .await
            .all()
            .await;
        assert_eq!(
            datas(&rest),
            datas(&all[cursor as usize..]),
            "?last_event_id={cursor}"
        );
        let rest = app
            .attach(
                &format!("/api/conversations/{session}/events"),
                Some(cursor),
            )
            .await
            .all()
            .await;
        assert_eq!(datas(&rest), datas(&all[cursor as usize..]));
    }
    let rest = app
        .attach(&format!("{events_path}?last_event_id=1"), Some(3))
        .await
        .all()
        .await;
    assert_eq!(datas(&rest), datas(&all[3..]), "the header wins");

    // A cursor that is not a non-negative integer is a bad parameter.
    for (header, query) in [(Some("abc"), None), (None, Some("-1")), (None, Some("x"))] {
        let mut req = app.req(
            reqwest::Method::GET,
            &match query {
                Some(q) => format!("{events_path}?last_event_id={q}"),
                None => events_path.clone(),
            },
        );
        if let Some(h) = header {
            req = req.header("Last-Event-ID", h);
        }
        let (status, body) = crate::support::read(req.send().await.unwrap()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{header:?} {query:?}: {body}"
        );
        assert_eq!(body["error"], "invalid_parameter", "{body}");
    }

    // A cursor at (or past) the terminal event: 204, so a browser's EventSource stops.
    for (header, query) in [
        (Some(n), ""),
        (None, "?last_event_id={n}"),
        (Some(n + 5), ""),
    ] {
        let path = format!("{events_path}{}", query.replace("{n}", &n.to_string()));
        let resp = app.open(&path, None, header).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{path} {header:?}");
    }
    let resp = app
        .open(
            &format!("/api/conversations/{session}/events"),
            None,
            Some(n),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let stored = app.session(&session).await;
    assert_eq!(stored["transport"], "stream");
    assert_eq!(stored["status"], "committed");

    // An sse run can be re-attached after the fact: the same events as its response.
    app.mock.push(Script::text("via sse", 2));
    let served = app
        .run_sse(json!({"conversation_id": session, "input": text_input("Again")}))
        .await
        .all()
        .await;
    let sse_session = served[0].data["session_id"].as_str().unwrap().to_owned();
    assert_run_stream(&served, &sse_session, 1);
    let replayed = app
        .attach(&format!("/api/sessions/{sse_session}/events"), None)
        .await
        .all()
        .await;
    assert_eq!(datas(&replayed), datas(&served));
    let replayed = app
        .attach(&format!("/api/conversations/{session}/events"), Some(2))
        .await
        .all()
        .await;
    assert_eq!(
        datas(&replayed),
        datas(&served[2..]),
        "the conversation's latest session"
    );

    // Unknown ids are 404.
    for path in [
        "/api/sessions/0190a0a0-0000-7000-8000-000000000000/events",
        "/api/conversations/0190a0a0-0000-7000-8000-000000000000/events",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"], "not_found");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_transport_and_replay_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[]).await {
        stream_transport_and_replay(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_transport_and_replay_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[]).await {
        stream_transport_and_replay(app).await;
    }
}

/// Attached while the run is going (held at a shell "gate" the test opens): the replay,
/// then live events (slow deltas) to the terminal one, from the start and after a cursor,
/// through both endpoints.
async fn attach_while_running(app: MockApp) {
    app.mock.push(Script::text("Checking. ", 1).tool_call(
        0,
        "call_gate",
        "shell",
        &[&json!({"command": gate_command("go")}).to_string()],
    ));
    app.mock.push(
        Script::new()
            .text_deltas(&["The ", "gate ", "was ", "opened ", "at ", "last."])
            .delay(std::time::Duration::from_millis(40)),
    );
    let accepted = app.run_stream(app.new_run("Wait for the gate")).await;
    let session = accepted["session_id"].as_str().unwrap().to_owned();

    let mut from_start = app
        .attach(&format!("/api/sessions/{session}/events"), None)
        .await;
    let head = from_start.until(|e| e.is("tool_call_start")).await;
    assert_eq!(app.status(&session).await, "executing");
    let (_, detail) = app.get(&format!("/api/conversations/{session}/get")).await;
    assert_eq!(
        detail["active_session"],
        json!({"session_id": session, "stream_key": format!("runs:{session}"), "transport": "stream"})
    );

    // Two more readers while it runs: after a cursor, and through the conversation.
    let cursor = head.last().unwrap().id;
    let mut after_cursor = app
        .attach(&format!("/api/sessions/{session}/events"), Some(cursor))
        .await;
    let mut by_conversation = app
        .attach(
            &format!("/api/conversations/{session}/events?last_event_id=1"),
            None,
        )
        .await;
    // Both are connected and served the replay before the run goes on.
    let first_after = after_cursor.next().await.unwrap();
    assert_eq!(first_after.id, cursor + 1);
    let first_by_conversation = by_conversation.next().await.unwrap();
    assert_eq!(first_by_conversation.id, 2);
    assert_eq!(app.status(&session).await, "executing");

    open_gate(&app.work, "go");
    let mut all = head;
    all.extend(from_start.all().await);
    assert_run_stream(&all, &session, 1);
    let last = all.last().unwrap();
    assert!(last.is("run_completed"), "{}", types(&all));
    assert_eq!(last.payload()["status"], "committed");
    assert_eq!(text_of(&all), "Checking. The gate was opened at last.");
    let result = &all[position(&all, "tool_call_result")];
    assert!(
        result.payload()["output"]
            .as_str()
            .unwrap()
            .contains("gate go open"),
        "{}",
        result.data
    );

    let mut rest = vec![first_after];
    rest.extend(after_cursor.all().await);
    assert_eq!(datas(&rest), datas(&all[cursor as usize..]));
    let mut rest = vec![first_by_conversation];
    rest.extend(by_conversation.all().await);
    assert_eq!(datas(&rest), datas(&all[1..]));

    assert_eq!(app.wait_finished(&session).await, "committed");
    let stored = app.session(&session).await;
    let display = stored["display_messages"].as_array().unwrap();
    assert_eq!(
        display[0],
        json!({"kind": "user", "text": "Wait for the gate"})
    );
    assert_eq!(
        display.last().unwrap(),
        &json!({"kind": "assistant_text", "agent_id": "main", "text": "The gate was opened at last."})
    );
    assert!(
        display.iter().any(|m| m["kind"] == "tool_call"
            && m["tool_name"] == "shell"
            && m["status"] == "success"),
        "{stored}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_while_running_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[]).await {
        attach_while_running(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_while_running_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[]).await {
        attach_while_running(app).await;
    }
}

/// After the stream's TTL the events endpoints answer 410 `gone`; the session record still
/// serves the transcript.
async fn expired_stream_is_gone(app: MockApp) {
    // Held at a gate until attached, so the 1 s TTL cannot run out before the first read.
    app.mock.push(shell_call("call_gate", &gate_command("go")));
    app.mock.push(Script::text("Short lived.", 3));
    let accepted = app.run_stream(app.new_run("Expire")).await;
    let session = accepted["session_id"].as_str().unwrap().to_owned();
    let mut stream = app
        .attach(&format!("/api/sessions/{session}/events"), None)
        .await;
    let mut events = stream.until(|e| e.is("tool_call_start")).await;
    open_gate(&app.work, "go");
    events.extend(stream.all().await);
    assert_run_stream(&events, &session, 1);
    assert!(
        events.last().unwrap().is("run_completed"),
        "{}",
        types(&events)
    );
    assert_eq!(app.wait_finished(&session).await, "committed");

    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    for path in [
        format!("/api/sessions/{session}/events"),
        format!("/api/conversations/{session}/events"),
        format!("/api/sessions/{session}/events?last_event_id=2"),
    ] {
        let body = crate::support::eventually("the stream to expire", || {
            let app = &app;
            let path = path.clone();
            async move {
                let resp = app.open(&path, None, None).await;
                if resp.status() != StatusCode::GONE {
                    return None;
                }
                Some(crate::support::read(resp).await.1)
            }
        })
        .await;
        assert_eq!(body["error"], "gone", "{path}: {body}");
    }
    let stored = app.session(&session).await;
    assert_eq!(stored["status"], "committed");
    assert_eq!(
        stored["display_messages"],
        json!([
            {"kind": "user", "text": "Expire"},
            {
                "kind": "tool_call", "agent_id": "main", "tool_call_id": "call_gate",
                "tool_name": "shell", "args": json!({"command": gate_command("go")}).to_string(),
                "result": events[position(&events, "tool_call_result")].payload()["output"],
                "status": "success"
            },
            {"kind": "assistant_text", "agent_id": "main", "text": "Short lived."}
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_stream_is_gone_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[("STREAM_TTL_SECS", "1")]).await {
        expired_stream_is_gone(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_stream_is_gone_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[("STREAM_TTL_SECS", "1")]).await {
        expired_stream_is_gone(app).await;
    }
}

/// A client that drops its sse response mid-run does not stop the run: it commits the
/// whole answer.
async fn disconnect_mid_run(app: MockApp) {
    app.mock.push(
        Script::new()
            .text_deltas(&["Looking ", "around. "])
            .delay(std::time::Duration::from_millis(30))
            .tool_call(
                0,
                "call_gate",
                "shell",
                &[&json!({"command": gate_command("go")}).to_string()],
            ),
    );
    app.mock.push(
        Script::new()
            .text_deltas(&["All ", "done ", "here."])
            .delay(std::time::Duration::from_millis(30)),
    );
    let mut stream = app.run_sse(app.new_run("Look around")).await;
    let head = stream.until(|e| e.is("content_delta")).await;
    let session = head[0].data["session_id"].as_str().unwrap().to_owned();
    drop(stream); // the client goes away
    assert_eq!(app.status(&session).await, "executing");

    open_gate(&app.work, "go");
    assert_eq!(app.wait_finished(&session).await, "committed");
    assert_eq!(
        app.mock.requests().len(),
        2,
        "the run went on to its second turn"
    );
    let stored = app.session(&session).await;
    let display = stored["display_messages"].as_array().unwrap();
    assert_eq!(
        display.first().unwrap(),
        &json!({"kind": "user", "text": "Look around"})
    );
    assert_eq!(
        display[1],
        json!({"kind": "assistant_text", "agent_id": "main", "text": "Looking around. "})
    );
    assert_eq!(display[2]["kind"], "tool_call", "{stored}");
    assert_eq!(display[2]["status"], "success", "{stored}");
    assert_eq!(
        display.last().unwrap(),
        &json!({"kind": "assistant_text", "agent_id": "main", "text": "All done here."})
    );
    // Its events can still be read in full.
    let events = app
        .attach(&format!("/api/sessions/{session}/events"), None)
        .await
        .all()
        .await;
    assert_run_stream(&events, &session, 1);
    assert_eq!(text_of(&events), "Looking around. All done here.");
    assert_eq!(datas(&events[..head.len()]), datas(&head));
}

#[tokio::test(flavor = "multi_thread")]
async fn disconnect_mid_run_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[]).await {
        disconnect_mid_run(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn disconnect_mid_run_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[]).await {
        disconnect_mid_run(app).await;
    }
}

/// Two runs at once on one conversation: one runs, the other gets 409 naming it; once the
/// first has sent its terminal event a new run is accepted at once.
async fn one_run_per_conversation(app: MockApp) {
    app.mock.push(Script::text("Ready.", 1));
    let events = app.run_sse(app.new_run("Start")).await.all().await;
    let conversation = events[0].data["session_id"].as_str().unwrap().to_owned();
    assert!(events.last().unwrap().is("run_completed"));

    app.mock.push(shell_call("call_gate", &gate_command("go")));
    app.mock.push(
        Script::new()
            .text_deltas(&["slow ", "first ", "run"])
            .delay(std::time::Duration::from_millis(30)),
    );
    let body = json!({"conversation_id": conversation, "input": text_input("Go")});
    // Three at once: exactly one runs, the others are told which one.
    let answers =
        futures::future::join_all((0..3).map(|_| app.post("/api/conversations/run", body.clone())))
            .await;
    let (won, lost): (Vec<_>, Vec<_>) = answers
        .into_iter()
        .partition(|(status, _)| *status == StatusCode::ACCEPTED);
    assert_eq!(won.len(), 1, "exactly one run starts: {won:?} {lost:?}");
    assert!(
        lost.iter()
            .all(|(status, _)| *status == StatusCode::CONFLICT),
        "{lost:?}"
    );
    let winner = &won[0].1;
    let running = winner["session_id"].as_str().unwrap().to_owned();
    assert_eq!(winner["conversation_id"], conversation.as_str());
    let active = json!({"session_id": running, "stream_key": format!("runs:{running}"), "transport": "stream"});
    for (_, loser) in &lost {
        assert_eq!(loser["error"], "conversation_busy", "{loser}");
        assert_eq!(loser["details"]["active_session"], active, "{loser}");
    }

    // While it runs, an sse run is refused the same way.
    let mut attached = app
        .attach(&format!("/api/sessions/{running}/events"), None)
        .await;
    attached.until(|e| e.is("tool_call_start")).await;
    let (status, busy) = app
        .post(
            "/api/conversations/run",
            json!({"conversation_id": conversation, "input": text_input("Me too")}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{busy}");
    assert_eq!(busy["error"], "conversation_busy");
    assert_eq!(busy["details"]["active_session"], active);
    let (_, detail) = app
        .get(&format!("/api/conversations/{conversation}/get"))
        .await;
    assert_eq!(detail["active_session"], active);
    assert_eq!(
        app.session_ids(&conversation).await.len(),
        2,
        "the refused runs created no session"
    );
    assert_eq!(
        app.mock.requests().len(),
        2,
        "only the winner asked the model"
    );

    open_gate(&app.work, "go");
    let rest = attached.until(|e| e.is_terminal()).await;
    assert!(rest.last().unwrap().is("run_completed"), "{}", types(&rest));
    // Continue as soon as the terminal event is read: no 409.
    app.mock.push(Script::text("Next.", 1));
    let next = app
        .run_sse(json!({"conversation_id": conversation, "input": text_input("Next")}))
        .await
        .all()
        .await;
    let next_session = next[0].data["session_id"].as_str().unwrap().to_owned();
    assert_run_stream(&next, &next_session, 1);
    assert_eq!(next[0].payload()["parent_session_id"], running.as_str());
    assert_eq!(next.last().unwrap().payload()["status"], "committed");
    assert!(
        attached.next().await.is_none(),
        "nothing after the terminal event"
    );
    assert_eq!(app.session_ids(&conversation).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_run_per_conversation_local() {
    if let Some(app) = MockApp::start(Backend::Local, &[]).await {
        one_run_per_conversation(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_run_per_conversation_pg_redis() {
    if let Some(app) = MockApp::start(Backend::PgRedis, &[]).await {
        one_run_per_conversation(app).await;
    }
}
