//! Notifications: `GET /api/notifications` follows a run's lifecycle and replays what a
//! client missed after a reconnect; webhooks get signed deliveries, in JSON and in ntfy's
//! and Gotify's formats, and a delivery answered with 500 is retried.

use std::sync::{Arc, Mutex};

use mock_llm::Script;
use serde_json::{Value, json};

use crate::support::{Backend, MockApp, SseEvent, eventually, read_http_request};

fn kinds(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

async fn notifications_follow_runs_and_replay_after_a_reconnect(app: MockApp) {
    // Cursors that are not ids are refused in the error shape, before any stream opens.
    for (header, query) in [
        ("abc", ""),
        ("-1", ""),
        ("", "?last_event_id=99999999999999999999"),
    ] {
        let mut req = app.req(reqwest::Method::GET, &format!("/api/notifications{query}"));
        if !header.is_empty() {
            req = req.header("Last-Event-ID", header);
        }
        let (status, body) = crate::support::read(req.send().await.unwrap()).await;
        assert_eq!(
            status,
            reqwest::StatusCode::BAD_REQUEST,
            "{header}{query}: {body}"
        );
    }
    let anonymous = app.get_open("/api/notifications").await;
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    let mut feed = app.attach("/api/notifications", None).await;
    app.mock.push(Script::text("one", 1));
    let (status, first) = app
        .post("/api/conversations/run/wait", app.new_run("first"))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{first}");
    let seen = feed.until(|e| e.is("conversation_updated")).await;
    assert_eq!(
        kinds(&seen),
        [
            "session_started",
            "session_finished",
            "conversation_updated"
        ]
    );
    let session = first["session_id"].as_str().unwrap();
    for e in &seen {
        assert_eq!(e.data["kind"], e.event.as_str());
        assert_eq!(e.data["id"], e.id);
        assert_eq!(e.data["session_id"], session);
        assert_eq!(e.data["conversation_id"], first["conversation_id"]);
        assert_eq!(e.data["session_type"], "agent");
    }
    assert_eq!(seen[1].data["status"], "committed");
    assert!(seen.windows(2).all(|w| w[0].id < w[1].id));
    let last_seen = seen.last().unwrap().id;
    drop(feed);

    // Missed while disconnected, replayed on reconnect with Last-Event-ID.
    app.mock.push(Script::text("two", 1));
    let (_, second) = app
        .post("/api/conversations/run/wait", app.new_run("second"))
        .await;
    let second_session = second["session_id"].as_str().unwrap().to_owned();
    let mut resumed = app.attach("/api/notifications", Some(last_seen)).await;
    let replayed = resumed.until(|e| e.is("conversation_updated")).await;
    assert_eq!(
        kinds(&replayed),
        [
            "session_started",
            "session_finished",
            "conversation_updated"
        ]
    );
    assert!(
        replayed
            .iter()
            .all(|e| e.data["session_id"] == second_session.as_str())
    );
    assert!(replayed[0].id > last_seen);

    // And the live ones after them.
    let mut careful = crate::support::mock_preset(&app.work.display().to_string());
    careful["preset_id"] = json!("careful");
    careful["tool_config"] = json!({"require_approval": ["shell"]});
    let (status, body) = app.post("/api/presets/create", careful).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    app.mock
        .push(Script::new().tool_call(0, "c1", "shell", &[r#"{"command": "echo hi"}"#]));
    let third = app
        .run_sse(json!({
            "preset_id": "careful",
            "input": crate::support::text_input("needs approval"),
        }))
        .await
        .all()
        .await;
    assert!(third.last().unwrap().is("run_completed"));
    let live = resumed.until(|e| e.is("conversation_updated")).await;
    assert_eq!(
        kinds(&live),
        [
            "session_started",
            "session_finished",
            "awaiting_approval",
            "conversation_updated"
        ]
    );
    assert_eq!(live[2].data["status"], "awaiting_tool_results");

    // An edit of the conversation is told too, without a session.
    let conversation = first["conversation_id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/api/conversations/{conversation}/update"),
            json!({"title": "Renamed"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let edited = resumed.until(|e| e.is("conversation_updated")).await;
    assert_eq!(kinds(&edited), ["conversation_updated"]);
    assert_eq!(edited[0].data["conversation_id"], conversation);
    assert!(
        edited[0].data.get("session_id").is_none(),
        "{}",
        edited[0].data
    );
}

crate::support::on_both_backends!(notifications_follow_runs_and_replay_after_a_reconnect);

/// A webhook receiver on a loopback port: records each request (head, body) and answers
/// with the next status of `answers` (then 200).
async fn receiver(answers: Vec<u16>) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    tokio::spawn(async move {
        let mut answers = answers.into_iter();
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let Some((target, head, body)) = read_http_request(&mut socket).await else {
                continue;
            };
            recorded
                .lock()
                .unwrap()
                .push((format!("{target}\n{head}"), body));
            let status = answers.next().unwrap_or(200);
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tokio::io::AsyncWriteExt::write_all(&mut socket, reply.as_bytes()).await;
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_get_signed_deliveries_their_formats_and_a_retry_after_a_500() {
    let (json_url, json_seen) = receiver(vec![500]).await;
    let (ntfy_url, ntfy_seen) = receiver(vec![]).await;
    let (gotify_url, gotify_seen) = receiver(vec![]).await;
    let hooks = json!([
        {"url": format!("{json_url}/hook"), "secret": "webhook-signing-key", "events": ["session_finished"]},
        {"url": format!("{ntfy_url}/runs"), "format": "ntfy", "events": ["session_finished"]},
        {"url": format!("{gotify_url}/message?token=t0k"), "format": "gotify", "events": ["session_finished"]},
    ])
    .to_string();
    let app = MockApp::start(Backend::Local, &[("WEBHOOKS", &hooks)])
        .await
        .unwrap();
    app.mock.push(Script::text("done", 1));
    let (_, run) = app
        .post("/api/conversations/run/wait", app.new_run("go"))
        .await;
    let session = run["session_id"].as_str().unwrap().to_owned();

    // The JSON hook: refused once with 500, delivered again (the same body and id).
    let deliveries = eventually("the JSON webhook's retry", || async {
        let seen = json_seen.lock().unwrap().clone();
        (seen.len() >= 2).then_some(seen)
    })
    .await;
    assert_eq!(deliveries.len(), 2, "one retry, then delivered");
    assert_eq!(
        deliveries[0], deliveries[1],
        "the retry repeats the delivery"
    );
    let (head, body) = &deliveries[1];
    assert!(head.starts_with("/hook\n"), "{head}");
    assert!(
        head.contains("x-agent-runtime-event: session_finished"),
        "{head}"
    );
    let signature = adapters::webhooks::signature("webhook-signing-key", body.as_bytes());
    assert!(
        head.contains(&format!("x-agent-runtime-signature: {signature}")),
        "{head}"
    );
    let note: Value = serde_json::from_str(body).unwrap();
    assert_eq!(note["kind"], "session_finished");
    assert_eq!(note["session_id"], session.as_str());
    assert_eq!(note["status"], "committed");
    assert!(
        head.contains(&format!("x-agent-runtime-delivery: {}", note["id"])),
        "{head}"
    );

    let ntfy = eventually("the ntfy delivery", || async {
        ntfy_seen.lock().unwrap().first().cloned()
    })
    .await;
    assert!(ntfy.0.starts_with("/runs\n"));
    assert!(
        ntfy.0.contains("title: agent-runtime: session finished"),
        "{}",
        ntfy.0
    );
    assert!(
        ntfy.1.contains(&session) && ntfy.1.ends_with(": committed"),
        "{}",
        ntfy.1
    );

    let gotify = eventually("the Gotify delivery", || async {
        gotify_seen.lock().unwrap().first().cloned()
    })
    .await;
    assert!(gotify.0.starts_with("/message?token=t0k\n"));
    let message: Value = serde_json::from_str(&gotify.1).unwrap();
    assert_eq!(message["title"], "agent-runtime: session finished");
    assert!(message["message"].as_str().unwrap().contains(&session));

    // Filtered: only session_finished reached the hooks.
    assert_eq!(ntfy_seen.lock().unwrap().len(), 1);
    assert_eq!(gotify_seen.lock().unwrap().len(), 1);
}
