//! Input parts over HTTP (spec 03): text, a file of the environment, inline binary data and
//! an image URL reach the model as one user message, and the binary lands in the
//! environment.

use base64::Engine;
use mock_llm::Script;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    Backend, MockApp, chat, dialogue, gate_command, open_gate, shell_call, types,
};

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

/// Steering takes the parts of a run's input under the same rules (spec 05): the file, the
/// inline image and the image URL reach the model's next request with the guidance, the
/// image is saved in a directory of the steer's own, a bad part is refused by index
/// before the session is even looked up, and a file outside the environment is refused.
#[tokio::test(flavor = "multi_thread")]
async fn steering_takes_every_part_kind() {
    let Some(app) = MockApp::start(Backend::Local, &[]).await else {
        return;
    };
    let (status, err) = app
        .post(
            "/api/sessions/nobody/steer",
            json!({"input": [{"type": "text", "text": "look"},
                             {"type": "binary", "data": "%%", "mime_type": "image/png"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(
        err["details"]["fields"][0]["field"], "input[1].data",
        "{err}"
    );
    let (status, err) = app
        .post(
            "/api/sessions/nobody/steer",
            json!({"input": "plain string"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");

    std::fs::write(app.work.join("notes.txt"), "remember the milk").unwrap();
    app.mock.push(shell_call("call_gate", &gate_command("go")));
    app.mock.push(Script::text("Compared.", 2));
    let mut stream = app.run_sse(app.new_run("Wait for the gate")).await;
    let head = stream.until(|e| e.is("tool_call_start")).await;
    let session = head[0].data["session_id"].as_str().unwrap().to_owned();
    let path = format!("/api/sessions/{session}/steer");

    let (status, err) = app
        .post(
            &path,
            json!({"input": [{"type": "file", "path": "../outside.txt"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(
        err["details"]["fields"][0]["field"], "input[0].path",
        "{err}"
    );

    let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG steer pixels");
    let (status, body) = app
        .post(
            &path,
            json!({"input": [
                {"type": "text", "text": "compare these"},
                {"type": "file", "path": "notes.txt"},
                {"type": "binary", "data": png, "mime_type": "image/png", "name": "shot.png"},
                {"type": "url", "url": "https://example.invalid/cat.png"}
            ], "message_id": "m1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["queued"], true, "{body}");

    let uploads = app.work.join(".uploads").join(&session);
    let steer_dir = std::fs::read_dir(&uploads)
        .unwrap()
        .map(|d| d.unwrap().path())
        .find(|d| {
            d.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("steer-")
        })
        .expect("a directory of the steer's own");
    assert_eq!(
        std::fs::read(steer_dir.join("shot.png")).unwrap(),
        b"\x89PNG steer pixels"
    );
    let saved = format!(
        ".uploads/{session}/{}/shot.png",
        steer_dir.file_name().unwrap().to_string_lossy()
    );

    open_gate(&app.work, "go");
    let events = stream.all().await;
    assert!(
        events.last().unwrap().is("run_completed"),
        "{}",
        types(&events)
    );
    let injected = events
        .iter()
        .find(|e| e.is("steering_injected"))
        .expect("steering_injected");
    let shown = injected.payload()["text"].as_str().unwrap();
    assert!(shown.starts_with("compare these"), "{shown}");
    assert!(shown.contains("[attachment: notes.txt]"), "{shown}");
    assert!(shown.contains(&format!("[attachment: {saved}]")), "{shown}");

    let request = app.mock.requests().pop().unwrap();
    let (role, text) = dialogue(&request).pop().unwrap();
    assert_eq!(role, "user");
    assert!(text.starts_with("compare these"), "{text}");
    assert!(text.contains("notes.txt"), "{text}");
    assert!(text.contains(&saved), "{text}");
    let sent = request.body.to_string();
    assert!(sent.contains(&png), "the image is inline: {sent}");
    assert!(sent.contains("https://example.invalid/cat.png"), "{sent}");
}
