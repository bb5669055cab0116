//! Input parts over HTTP (spec 03): text, a file of the environment, inline binary data and
//! an image URL reach the model as one user message, and the binary lands in the
//! environment.

use base64::Engine;
use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Backend, MockApp, chat};

#[tokio::test(flavor = "multi_thread")]
async fn every_part_kind_reaches_the_model_and_the_environment() {
    let Some(app) = MockApp::start(Backend::Local, &[]).await else {
        return;
    };
    std::fs::write(app.work.join("notes.txt"), "remember the milk").unwrap();
    app.mock.push(Script::text("seen", 2));
    let data = base64::engine::general_purpose::STANDARD.encode("hello bytes");
    let body = json!({
        "preset_id": "mock",
        "input": [
            {"type": "text", "text": "look at these"},
            {"type": "file", "path": "notes.txt"},
            {"type": "binary", "data": data, "mime_type": "text/plain", "name": "h.txt"},
            {"type": "url", "url": "https://example.invalid/cat.png"}
        ]
    });
    let events = app.run_sse(body).await.all().await;
    let session_id = events[0].data["session_id"].as_str().unwrap().to_owned();
    assert!(events.last().unwrap().is("run_completed"));

    let saved = app.work.join(".uploads").join(&session_id).join("h.txt");
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), "hello bytes");

    let request = app.mock.requests().pop().unwrap();
    let user = chat(&request)
        .into_iter()
        .filter(|(role, _)| role == "user")
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(user.contains("look at these"), "{user}");
    assert!(user.contains("notes.txt"), "{user}");
    assert!(
        user.contains(&format!(".uploads/{session_id}/h.txt")),
        "{user}"
    );
    assert!(
        request
            .body
            .to_string()
            .contains("https://example.invalid/cat.png"),
        "the image URL is passed to the model: {}",
        request.body
    );

    let (status, session) = app.get(&format!("/api/sessions/{session_id}/get")).await;
    assert_eq!(status, StatusCode::OK);
    let shown = session["display_messages"][0]["text"].as_str().unwrap();
    assert!(shown.starts_with("look at these"), "{shown}");
    assert!(shown.contains("notes.txt"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_outside_the_environment_is_refused_before_a_session_exists() {
    let Some(app) = MockApp::start(Backend::Local, &[]).await else {
        return;
    };
    for path in ["../outside.txt", "/etc/passwd", "missing.txt"] {
        let (status, body) = app
            .post(
                "/api/conversations/run",
                json!({"preset_id": "mock", "input": [{"type": "file", "path": path}]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(
            body["details"]["fields"][0]["field"], "input[0].path",
            "{body}"
        );
    }
    let (_, list) = app.get("/api/conversations/list").await;
    assert_eq!(list["conversations"], json!([]), "no session was created");
    assert!(app.mock.requests().is_empty());
}
