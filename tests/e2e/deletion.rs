//! `conversations/{id}/delete`: everything of the conversation goes at once (rows and the
//! state-store objects of its sessions), 404 afterwards, 409 while it runs; other
//! conversations are untouched.

use reqwest::StatusCode;
use serde_json::json;

use crate::model_controls::run_wait;
use crate::support::{MockApp, gate_command, on_both_backends, open_gate, shell_call, text_input};

on_both_backends!(deleting_a_conversation_removes_it_whole);

/// The session directories in the state store.
fn stored(app: &MockApp) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(app.dir.path().join("state/sessions"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

async fn deleting_a_conversation_removes_it_whole(app: MockApp) {
    let first = run_wait(
        &app,
        json!({"preset_id": "mock", "input": text_input("one"),
        "metadata": {"channel": "gone"}}),
    )
    .await;
    let doomed = first["conversation_id"].as_str().unwrap().to_owned();
    run_wait(
        &app,
        json!({"conversation_id": doomed, "input": text_input("two")}),
    )
    .await;
    let kept = run_wait(
        &app,
        json!({"preset_id": "mock", "input": text_input("other")}),
    )
    .await;
    let kept_session = kept["session_id"].as_str().unwrap().to_owned();
    let doomed_sessions = app.session_ids(&doomed).await;
    assert_eq!(doomed_sessions.len(), 2);
    assert_eq!(stored(&app).len(), 3);

    // While a run of it goes, it is refused and nothing is removed.
    app.mock.push(shell_call("g1", &gate_command("go")));
    let running = app
        .run_stream(json!({"conversation_id": doomed, "input": text_input("wait")}))
        .await;
    let path = format!("/api/conversations/{doomed}/delete");
    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conversation_busy");
    open_gate(&app.work, "go");
    app.wait_finished(running["session_id"].as_str().unwrap())
        .await;

    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deleted_sessions"], 3);
    let (status, _) = app.get(&format!("/api/conversations/{doomed}/get")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for session in &doomed_sessions {
        let (status, _) = app.get(&format!("/api/sessions/{session}/get")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        stored(&app),
        [kept_session],
        "only the other conversation's state is left"
    );
    let (_, list) = app
        .get("/api/conversations/list?metadata.channel=gone")
        .await;
    assert_eq!(list["conversations"], json!([]));
    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The other conversation goes on.
    run_wait(
        &app,
        json!({"conversation_id": kept["conversation_id"], "input": text_input("more")}),
    )
    .await;
}
