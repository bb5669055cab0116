//! Retention: `conversations/{id}/delete` removes everything of the conversation at once
//! (rows, the state-store objects and uploads of its sessions), 404 afterwards, 409 while
//! it runs; `…/archive` closes it to runs until unarchived; `RETENTION_DAYS` deletes archived ones. Other
//! conversations are untouched throughout.

use std::collections::BTreeSet;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::model_controls::run_wait;
use crate::support::{
    Backend, MockApp, eventually, gate_command, on_both_backends, open_gate, shell_call, text_input,
};

on_both_backends!(
    deleting_a_conversation_removes_it_whole,
    archiving_closes_a_conversation_until_unarchived
);

/// A run input with an attached file, saved under the run's `.uploads/`.
fn with_upload(text: &str) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode("attached bytes");
    json!([
        {"type": "text", "text": text},
        {"type": "binary", "data": data, "mime_type": "text/plain", "name": "a.txt"}
    ])
}

/// The history segments in the state store, by name.
fn segments(app: &MockApp) -> BTreeSet<String> {
    let root = app.dir.path().join("state/history");
    let mut names = BTreeSet::new();
    for fan in std::fs::read_dir(&root).into_iter().flatten() {
        for file in std::fs::read_dir(fan.unwrap().path()).unwrap() {
            let name = file.unwrap().file_name().to_string_lossy().into_owned();
            names.insert(name.trim_end_matches(".json").to_owned());
        }
    }
    names
}

/// The segments a session's stored state names.
fn named_by(app: &MockApp, session_id: &str) -> BTreeSet<String> {
    let path = app
        .dir
        .path()
        .join(format!("state/sessions/{session_id}/state.json"));
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    let lists = std::iter::once(&doc["history"]).chain(
        doc["subagent_segments"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values()),
    );
    for list in lists {
        for segment in list.as_array().into_iter().flatten() {
            names.insert(segment["sha256"].as_str().unwrap().to_owned());
        }
    }
    names
}

/// A conversation of two runs ("one", then "two") and another of one ("other"); the
/// first run's result and the other's.
async fn two_conversations(app: &MockApp) -> (Value, Value) {
    let first = run_wait(app, app.new_run("one")).await;
    run_wait(
        app,
        json!({"conversation_id": first["conversation_id"], "input": text_input("two")}),
    )
    .await;
    let other = run_wait(app, app.new_run("other")).await;
    (first, other)
}

/// POSTing to `path` is refused with 409 `conversation_busy` while a run of the
/// conversation goes; returns once that run has ended.
async fn refused_while_running(app: &MockApp, conversation_id: &str, path: &str) {
    app.mock.push(shell_call("g1", &gate_command("go")));
    let running = app
        .run_stream(json!({"conversation_id": conversation_id, "input": text_input("wait")}))
        .await;
    let (status, body) = app.post(path, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conversation_busy");
    open_gate(&app.work, "go");
    app.wait_finished(running["session_id"].as_str().unwrap())
        .await;
}

/// The statuses of a conversation's sessions, oldest first.
async fn session_statuses(app: &MockApp, conversation_id: &str) -> Vec<String> {
    let (_, sessions) = app
        .get(&format!("/api/conversations/{conversation_id}/sessions"))
        .await;
    sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .collect()
}

/// A new conversation's run body with an attached file.
fn new_with_upload(text: &str) -> Value {
    json!({"preset_id": "mock", "input": with_upload(text)})
}

/// The names in `dir`, sorted; none when it does not exist.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The session directories under the working directory's `.uploads/`.
fn uploads(app: &MockApp) -> Vec<String> {
    names_in(&app.work.join(".uploads"))
}

/// The session directories in the state store.
fn stored(app: &MockApp) -> Vec<String> {
    names_in(&app.dir.path().join("state/sessions"))
}

async fn deleting_a_conversation_removes_it_whole(app: MockApp) {
    // A tool call makes the first history four messages: one whole segment to share.
    app.mock.push(shell_call("c1", "true"));
    let first = run_wait(
        &app,
        json!({"preset_id": "mock", "input": text_input("one"),
        "metadata": {"channel": "gone"}}),
    )
    .await;
    let doomed = first["conversation_id"].as_str().unwrap().to_owned();
    run_wait(
        &app,
        json!({"conversation_id": doomed, "input": with_upload("two")}),
    )
    .await;
    let kept = run_wait(&app, new_with_upload("other")).await;
    let kept_session = kept["session_id"].as_str().unwrap().to_owned();
    let doomed_sessions = app.session_ids(&doomed).await;
    assert_eq!(doomed_sessions.len(), 2);
    // The second session continued the first: it names the first one's segments too.
    let (first_named, second_named) = (
        named_by(&app, &doomed_sessions[0]),
        named_by(&app, &doomed_sessions[1]),
    );
    assert!(!first_named.is_empty() && first_named.is_subset(&second_named));
    assert_eq!(stored(&app).len(), 3);
    assert_eq!(uploads(&app).len(), 2);

    // While a run of it goes, it is refused and nothing is removed.
    let path = format!("/api/conversations/{doomed}/delete");
    refused_while_running(&app, &doomed, &path).await;

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
        [kept_session.as_str()],
        "only the other conversation's state is left"
    );
    assert_eq!(
        uploads(&app),
        [kept_session.as_str()],
        "only the other conversation's uploads are left"
    );
    // The history only the deleted sessions named goes too, in the background.
    let kept_segments = named_by(&app, &kept_session);
    assert!(!kept_segments.is_empty());
    eventually("unnamed history segments to go", || async {
        (segments(&app) == kept_segments).then_some(())
    })
    .await;
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

/// Archiving closes a conversation to runs: its sessions are archived, runs on it are
/// refused, reads and edits of its title still work; unarchived, its sessions have their
/// statuses back and it runs again.
async fn archiving_closes_a_conversation_until_unarchived(app: MockApp) {
    let (first, other) = two_conversations(&app).await;
    let conversation = first["conversation_id"].as_str().unwrap().to_owned();
    let first_session = first["session_id"].as_str().unwrap().to_owned();
    let path = format!("/api/conversations/{conversation}/archive");

    // Refused while a run of it goes; nothing changes.
    refused_while_running(&app, &conversation, &path).await;
    let (_, got) = app
        .get(&format!("/api/conversations/{conversation}/get"))
        .await;
    assert_eq!(got["status"], "active");

    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "archived");
    assert_eq!(body["conversation_id"], conversation.as_str());
    let statuses = session_statuses(&app, &conversation).await;
    assert_eq!(statuses, ["archived"; 3]);
    // Its transcript is still there.
    let session = app.session(&first_session).await;
    assert!(!session["display_messages"].as_array().unwrap().is_empty());

    // No run joins it, whichever way it is addressed.
    let requests = app.mock.requests().len();
    let (status, body) = app
        .post(
            "/api/conversations/run/wait",
            json!({"conversation_id": conversation, "input": text_input("three")}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conversation_archived");
    let (status, body) = app
        .post(
            "/api/sessions/execute/wait",
            json!({"preset_id": "mock", "parent_session_id": first_session,
                   "input": text_input("three")}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    let (status, body) = app
        .post(
            &format!("/api/conversations/{conversation}/fork/wait"),
            json!({"input": text_input("three")}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    let (status, body) = app
        .post(
            &format!("/api/conversations/{conversation}/fire"),
            json!({}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert_eq!(app.mock.requests().len(), requests, "no model was asked");

    // Its title can still change; archiving again changes nothing.
    let update = format!("/api/conversations/{conversation}/update");
    let (status, body) = app.post(&update, json!({"title": "Filed"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["title"].as_str(), body["status"].as_str()),
        (Some("Filed"), Some("archived"))
    );
    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, listed) = app.get("/api/conversations/list?status=archived").await;
    let ids: Vec<&str> = listed["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [conversation.as_str()]);
    let (status, _) = app.post("/api/conversations/nope/archive", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Unarchived, every session has its status back and the conversation goes on.
    let (status, body) = app.post(&update, json!({"status": "active"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    let statuses = session_statuses(&app, &conversation).await;
    assert_eq!(statuses, ["committed"; 3]);
    let next = run_wait(
        &app,
        json!({"conversation_id": conversation, "input": text_input("back")}),
    )
    .await;
    assert_eq!(next["status"], "committed");
    assert_eq!(app.session_ids(&conversation).await.len(), 4);

    // `update` archives the same way, sessions included.
    let other_id = other["conversation_id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/api/conversations/{other_id}/update"),
            json!({"status": "archived"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let other_session = other["session_id"].as_str().unwrap();
    assert_eq!(app.status(other_session).await, "archived");
}

/// With `RETENTION_DAYS`, an archived conversation goes (rows, state and uploads) once it
/// has been untouched that long; an active one stays however old.
async fn retention_deletes_archived_conversations(backend: Backend) {
    // 0.00002 days is 1.7 s; the sweep looks every second.
    let vars = [("RETENTION_DAYS", "0.00002"), ("RETENTION_SWEEP_SECS", "1")];
    let Some(app) = MockApp::start(backend, &vars).await else {
        return;
    };
    let archived = run_wait(&app, new_with_upload("old")).await;
    let kept = run_wait(&app, new_with_upload("active")).await;
    let archived_id = archived["conversation_id"].as_str().unwrap().to_owned();
    let kept_session = kept["session_id"].as_str().unwrap().to_owned();
    app.archive(&archived_id).await;

    let get = format!("/api/conversations/{archived_id}/get");
    eventually("the sweep to delete the archived conversation", || async {
        let (status, _) = app.get(&get).await;
        (status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    // Its files go right after its rows.
    let only_kept = [kept_session.clone()];
    eventually("the archived conversation's files to go", || async {
        (stored(&app) == only_kept && uploads(&app) == only_kept).then_some(())
    })
    .await;
    let kept_id = kept["conversation_id"].as_str().unwrap();
    let (status, _) = app.get(&format!("/api/conversations/{kept_id}/get")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_archived_conversations_local() {
    retention_deletes_archived_conversations(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_archived_conversations_pg_redis() {
    retention_deletes_archived_conversations(Backend::PgRedis).await;
}

/// The keys in an S3 bucket (moto and MinIO answer an unsigned ListObjectsV2).
async fn bucket_keys(endpoint: &str, bucket: &str) -> BTreeSet<String> {
    let listing = reqwest::get(format!("{endpoint}/{bucket}?list-type=2&max-keys=1000"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    listing
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
        .collect()
}

/// On an S3 state store, deleting a conversation removes its sessions' objects and the
/// history segments only they named; the other conversation's objects stay.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_removes_the_objects_of_an_s3_state_store() {
    let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") else {
        adapters::testing::skip_or_fail::<()>("e2e s3", "TEST_S3_ENDPOINT is not set");
        return;
    };
    let bucket = adapters::testing::unique("retention").replace('_', "-");
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let vars = [
        ("STATE_STORE", "s3"),
        ("S3_ENDPOINT", endpoint.as_str()),
        ("S3_BUCKET", bucket.as_str()),
        ("S3_ACCESS_KEY", "test"),
        ("S3_SECRET_KEY", "test"),
    ];
    let Some(app) = MockApp::start(Backend::Local, &vars).await else {
        return;
    };
    app.mock.push(shell_call("c1", "true"));
    let (doomed, kept) = two_conversations(&app).await;
    let doomed_id = doomed["conversation_id"].as_str().unwrap().to_owned();
    let kept_session = kept["session_id"].as_str().unwrap();
    let keys = bucket_keys(&endpoint, &bucket).await;
    let sessions = |keys: &BTreeSet<String>| -> BTreeSet<String> {
        keys.iter()
            .filter_map(|k| {
                k.strip_prefix("sessions/")?
                    .split('/')
                    .next()
                    .map(str::to_owned)
            })
            .collect()
    };
    assert_eq!(sessions(&keys).len(), 3, "{keys:?}");
    let segments_before = keys.iter().filter(|k| k.starts_with("history/")).count();

    let (status, body) = app
        .post(&format!("/api/conversations/{doomed_id}/delete"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let left = eventually("the deleted conversation's objects to go", || async {
        let keys = bucket_keys(&endpoint, &bucket).await;
        let segments = keys.iter().filter(|k| k.starts_with("history/")).count();
        (sessions(&keys) == BTreeSet::from([kept_session.to_owned()]) && segments < segments_before)
            .then_some(keys)
    })
    .await;
    // What is left still serves the other conversation.
    assert!(left.contains(&format!("sessions/{kept_session}/state.json")));
    let kept_id = kept["conversation_id"].as_str().unwrap();
    run_wait(
        &app,
        json!({"conversation_id": kept_id, "input": text_input("more")}),
    )
    .await;
    let request = app.mock.requests().pop().unwrap();
    assert!(
        crate::support::chat(&request)
            .iter()
            .any(|(_, text)| text.contains("other")),
        "the continued run saw its history"
    );
}
