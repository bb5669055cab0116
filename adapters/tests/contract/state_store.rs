//! `StateStore` contract (ports/src/state_store.rs) against the fs, memory and S3 backends.
//!
//! Cases see the store only as `&dyn StateStore`. The fixture adds what the port cannot
//! show: for fs, the files under the root (layout, no leftover temp files); for fs and S3,
//! a way to plant foreign bytes so decoding failures can be provoked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use adapters::state_store::{OpendalStateStore, S3Settings};
use ports::{
    AssistantPart, ContextState, DisplayMessage, ModelMessage, PendingKind, PendingToolCall,
    SessionId, SessionState, StateStore, StateStoreError, Task, TaskStatus, ToolCallStatus,
    ToolResult, Usage, UserPart,
};
use tempfile::TempDir;

use crate::support;

/// A store under test plus the backend handle the assertions below the port need.
pub struct Fixture {
    store: Arc<dyn StateStore>,
    backend: Backend,
}

enum Backend {
    Fs(TempDir),
    Memory,
    S3 { endpoint: String, bucket: String },
}

impl Fixture {
    fn store(&self) -> &dyn StateStore {
        self.store.as_ref()
    }

    /// For fs, asserts the files under the root are exactly `expected` (relative paths):
    /// documents land where spec 01 says, and no temp file survives a write.
    fn assert_fs_files(&self, expected: &[String]) {
        if let Backend::Fs(dir) = &self.backend {
            let mut found = BTreeSet::new();
            collect_files(dir.path(), dir.path(), &mut found);
            let expected: BTreeSet<String> = expected.iter().cloned().collect();
            assert_eq!(found, expected, "files under the fs root");
        }
    }

    /// Whether the backend's test server may fail a request outright under concurrent load.
    /// moto answers some GETs racing a PUT of the same key with a 500: a server fault the
    /// adapter reports as `Unavailable`, not a torn document, so that case may retry it.
    fn server_may_fail_under_load(&self) -> bool {
        matches!(self.backend, Backend::S3 { .. })
    }

    /// Stores raw bytes under `key` behind the adapter's back; false when the backend
    /// offers no outside door (memory).
    async fn plant(&self, key: &str, bytes: &'static [u8]) -> bool {
        match &self.backend {
            Backend::Fs(dir) => {
                let path = dir.path().join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
                true
            }
            Backend::Memory => false,
            Backend::S3 { endpoint, bucket } => {
                let resp = http()
                    .put(format!("{endpoint}/{bucket}/{key}"))
                    .body(bytes)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    resp.status().is_success(),
                    "planting {key}: {}",
                    resp.status()
                );
                true
            }
        }
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).unwrap();
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn fs_store() -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let store = OpendalStateStore::local(dir.path()).unwrap();
    Some(Fixture {
        store: Arc::new(store),
        backend: Backend::Fs(dir),
    })
}

async fn memory_store() -> Option<Fixture> {
    Some(Fixture {
        store: Arc::new(OpendalStateStore::memory().unwrap()),
        backend: Backend::Memory,
    })
}

/// A fresh bucket per test on `TEST_S3_ENDPOINT` (moto or MinIO), created by an unsigned
/// PUT, which both accept.
async fn s3_store() -> Option<Fixture> {
    const SUITE: &str = "state_store::s3";
    let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") else {
        return support::skip_or_fail(SUITE, "TEST_S3_ENDPOINT is not set");
    };
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    // Bucket names allow lowercase letters, digits and hyphens only.
    let bucket = support::unique("state").replace('_', "-");
    match http().put(format!("{endpoint}/{bucket}")).send().await {
        Err(e) => return support::skip_or_fail(SUITE, &format!("{endpoint} unreachable: {e}")),
        Ok(resp) => assert!(
            resp.status().is_success(),
            "creating bucket {bucket}: {}",
            resp.status()
        ),
    }
    let store = OpendalStateStore::s3(S3Settings {
        endpoint: Some(endpoint.clone()),
        bucket: bucket.clone(),
        access_key: Some("test".into()),
        secret_key: Some("test".into()),
        region: None,
    })
    .unwrap();
    Some(Fixture {
        store: Arc::new(store),
        backend: Backend::S3 { endpoint, bucket },
    })
}

fn state_key(id: &str) -> String {
    format!("sessions/{id}/state.json")
}

fn display_key(id: &str) -> String {
    format!("sessions/{id}/display_messages.json")
}

/// Every part of a state filled in, so a field the adapter drops shows as a difference.
fn sample_state(tag: &str) -> SessionState {
    SessionState {
        context_state: ContextState {
            tasks: vec![
                Task {
                    id: "1".into(),
                    subject: format!("plan {tag}"),
                    description: "split the work".into(),
                    status: TaskStatus::Completed,
                },
                Task {
                    id: "2".into(),
                    subject: "build".into(),
                    description: String::new(),
                    status: TaskStatus::InProgress,
                },
            ],
            subagent_histories: BTreeMap::from([(
                "researcher".into(),
                vec![ModelMessage::User {
                    parts: vec![UserPart::Text {
                        text: "find the spec".into(),
                    }],
                }],
            )]),
            async_subagents: BTreeMap::from([("indexer".into(), "sess-42".into())]),
            usage: Usage {
                total_tokens: 1_234,
                prompt_tokens: 1_000,
                completion_tokens: 234,
                model_requests: 3,
                ..Default::default()
            },
            handoff_notes: Some(format!("notes {tag}")),
            pending_tool_calls: vec![PendingToolCall {
                tool_call_id: "call_9".into(),
                tool_name: "shell".into(),
                args: serde_json::json!({ "cmd": "rm -rf build", "timeout": 30 }),
                kind: PendingKind::Approval,
            }],
        },
        message_history: vec![
            ModelMessage::User {
                parts: vec![
                    UserPart::Text {
                        text: format!("hello {tag} – ünïcode ✓"),
                    },
                    UserPart::Image {
                        url: Some("https://example.com/a.png".into()),
                        data: None,
                        mime_type: Some("image/png".into()),
                    },
                ],
            },
            ModelMessage::Assistant {
                parts: vec![
                    AssistantPart::Thinking {
                        text: "consider".into(),
                        signature: Some("sig==".into()),
                    },
                    AssistantPart::RedactedThinking {
                        data: "opaque".into(),
                    },
                    AssistantPart::ToolCall {
                        id: "call_1".into(),
                        name: "shell".into(),
                        arguments: r#"{"cmd":"ls"}"#.into(),
                    },
                ],
            },
            ModelMessage::Tool {
                results: vec![ToolResult {
                    tool_call_id: "call_1".into(),
                    tool_name: "shell".into(),
                    content: "a\nb\n".into(),
                    is_error: false,
                    images: vec![],
                }],
            },
            ModelMessage::Assistant {
                parts: vec![AssistantPart::Text {
                    text: "done".into(),
                }],
            },
        ],
    }
}

/// About 2 MB. Documents of different `fill` have equal length, so a mixture of two
/// would still decode and only the equality check can catch it.
fn large_state(fill: char) -> SessionState {
    let chunk = fill.to_string().repeat(1024);
    SessionState {
        message_history: (0..2048)
            .map(|i| ModelMessage::User {
                parts: vec![UserPart::Text {
                    text: format!("{i:05}{chunk}"),
                }],
            })
            .collect(),
        ..sample_state("large")
    }
}

fn sample_display_messages() -> Vec<DisplayMessage> {
    vec![
        DisplayMessage::User {
            text: "list files".into(),
        },
        DisplayMessage::Thinking {
            agent_id: "main".into(),
            text: "use ls".into(),
        },
        DisplayMessage::ToolCall {
            agent_id: "main".into(),
            tool_call_id: "call_1".into(),
            tool_name: "shell".into(),
            args: r#"{"cmd":"ls"}"#.into(),
            result: Some("a\nb\n".into()),
            status: ToolCallStatus::Success,
        },
        DisplayMessage::Subagent {
            agent_id: "main".into(),
            subagent_name: "researcher".into(),
            result: None,
            status: ToolCallStatus::Pending,
        },
        DisplayMessage::AssistantText {
            agent_id: "main".into(),
            text: "two files".into(),
        },
        DisplayMessage::Error {
            code: "tool_failed".into(),
            message: "exit 1".into(),
        },
    ]
}

async fn state_round_trip(f: &Fixture) {
    let store = f.store();
    let id = SessionId::from(support::unique("sess"));
    let state = sample_state("round");
    store.save_state(&id, &state).await.unwrap();
    assert_eq!(store.load_state(&id).await.unwrap(), state);
    f.assert_fs_files(&[state_key(&id)]);
    if let Backend::Fs(dir) = &f.backend {
        let on_disk = std::fs::read(dir.path().join(state_key(&id))).unwrap();
        let decoded: SessionState = serde_json::from_slice(&on_disk).unwrap();
        assert_eq!(decoded, state, "state.json on disk");
    }
}

async fn display_messages_round_trip(f: &Fixture) {
    let store = f.store();
    let id = SessionId::from(support::unique("sess"));
    let messages = sample_display_messages();
    store.save_display_messages(&id, &messages).await.unwrap();
    assert_eq!(store.load_display_messages(&id).await.unwrap(), messages);
    let state = store.load_state(&id).await;
    assert!(
        matches!(state, Err(StateStoreError::NotFound)),
        "display messages must not create a state: {state:?}"
    );
    f.assert_fs_files(&[display_key(&id)]);
}

async fn never_saved_is_not_found(f: &Fixture) {
    let store = f.store();
    let id = SessionId::from(support::unique("sess"));
    let state = store.load_state(&id).await;
    assert!(matches!(state, Err(StateStoreError::NotFound)), "{state:?}");
    let messages = store.load_display_messages(&id).await;
    assert!(
        matches!(messages, Err(StateStoreError::NotFound)),
        "{messages:?}"
    );
}

/// A shorter document over a longer one: leftover bytes of the old one would show.
async fn overwrite_replaces_whole_document(f: &Fixture) {
    let store = f.store();
    let id = SessionId::from(support::unique("sess"));
    store.save_state(&id, &large_state('a')).await.unwrap();
    let small = sample_state("second");
    store.save_state(&id, &small).await.unwrap();
    assert_eq!(store.load_state(&id).await.unwrap(), small);

    let long = sample_display_messages();
    store.save_display_messages(&id, &long).await.unwrap();
    store.save_display_messages(&id, &long[..1]).await.unwrap();
    assert_eq!(store.load_display_messages(&id).await.unwrap(), &long[..1]);
    f.assert_fs_files(&[display_key(&id), state_key(&id)]);
}

async fn unsafe_ids_are_invalid_keys(f: &Fixture) {
    let store = f.store();
    let state = sample_state("unsafe");
    let messages = sample_display_messages();
    for id in ["../x", "a/b", "", ".", "..", "a\\b", "a.b"] {
        let id = &SessionId::from(id);
        let saved = store.save_state(id, &state).await;
        assert!(
            matches!(saved, Err(StateStoreError::InvalidKey)),
            "save_state({id:?}): {saved:?}"
        );
        let loaded = store.load_state(id).await;
        assert!(
            matches!(loaded, Err(StateStoreError::InvalidKey)),
            "load_state({id:?}): {loaded:?}"
        );
        let saved = store.save_display_messages(id, &messages).await;
        assert!(
            matches!(saved, Err(StateStoreError::InvalidKey)),
            "save_display_messages({id:?}): {saved:?}"
        );
        let loaded = store.load_display_messages(id).await;
        assert!(
            matches!(loaded, Err(StateStoreError::InvalidKey)),
            "load_display_messages({id:?}): {loaded:?}"
        );
    }
    f.assert_fs_files(&[]);
}

async fn undecodable_bytes_are_corrupt(f: &Fixture) {
    let id = SessionId::from(support::unique("sess"));
    if !f.plant(&state_key(&id), b"{\"context_state\": tru").await {
        eprintln!("note: this backend cannot hold foreign bytes; Corrupt not provoked");
        return;
    }
    let state = f.store().load_state(&id).await;
    assert!(
        matches!(state, Err(StateStoreError::Corrupt(_))),
        "{state:?}"
    );
    // Valid JSON of the wrong shape is just as undecodable.
    f.plant(&display_key(&id), b"{\"kind\": \"user\"}").await;
    let messages = f.store().load_display_messages(&id).await;
    assert!(
        matches!(messages, Err(StateStoreError::Corrupt(_))),
        "{messages:?}"
    );
}

/// One writer alternates two large documents while readers load in a loop: every read
/// must be one whole version, never an error, a truncation or a mixture.
async fn readers_see_whole_documents_during_writes(f: &Fixture) {
    const WRITES: usize = 16;
    const READERS: usize = 4;
    let id = SessionId::from(support::unique("sess"));
    let docs = Arc::new([large_state('a'), large_state('b')]);
    f.store().save_state(&id, &docs[0]).await.unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (store, docs, done, id) = (f.store.clone(), docs.clone(), done.clone(), id.clone());
            let may_fail = f.server_may_fail_under_load();
            tokio::spawn(async move {
                let mut reads = 0usize;
                loop {
                    let finished = done.load(Ordering::Acquire);
                    let got = match store.load_state(&id).await {
                        Ok(got) => got,
                        Err(StateStoreError::Unavailable(_)) if may_fail && !finished => continue,
                        Err(e) => panic!("read {reads} failed: {e:?}"),
                    };
                    // No assert_eq!: a 2 MB Debug dump would bury the message.
                    assert!(
                        got == docs[0] || got == docs[1],
                        "read {reads} saw neither whole document"
                    );
                    reads += 1;
                    if finished {
                        return reads;
                    }
                }
            })
        })
        .collect();

    for i in 0..WRITES {
        f.store().save_state(&id, &docs[(i + 1) % 2]).await.unwrap();
    }
    done.store(true, Ordering::Release);
    let mut total = 0;
    for reader in readers {
        total += reader.await.unwrap();
    }
    assert!(total >= READERS, "readers ran");
    assert!(f.store().load_state(&id).await.unwrap() == docs[WRITES % 2]);
    f.assert_fs_files(&[state_key(&id)]);
}

/// Deleting a session removes both its documents and nothing of another session; deleting
/// again (or a session never saved) succeeds; a hostile id is refused, not resolved.
async fn delete_removes_one_session_whole(f: &Fixture) {
    let store = f.store();
    let (gone, kept) = (
        SessionId::from(support::unique("sess")),
        SessionId::from(support::unique("sess")),
    );
    for id in [&gone, &kept] {
        store.save_state(id, &sample_state("doomed")).await.unwrap();
        store
            .save_display_messages(id, &sample_display_messages())
            .await
            .unwrap();
    }
    store.delete_session(&gone).await.unwrap();
    assert!(matches!(
        store.load_state(&gone).await,
        Err(StateStoreError::NotFound)
    ));
    assert!(matches!(
        store.load_display_messages(&gone).await,
        Err(StateStoreError::NotFound)
    ));
    assert_eq!(
        store.load_state(&kept).await.unwrap(),
        sample_state("doomed")
    );
    f.assert_fs_files(&[display_key(&kept), state_key(&kept)]);
    store.delete_session(&gone).await.unwrap();
    store
        .delete_session(&SessionId::from(support::unique("never")))
        .await
        .unwrap();
    for hostile in ["..", "../sessions", "a/b", ""] {
        assert!(matches!(
            store.delete_session(&SessionId::from(hostile)).await,
            Err(StateStoreError::InvalidKey)
        ));
    }
    assert_eq!(
        store.load_state(&kept).await.unwrap(),
        sample_state("doomed")
    );
}

async fn health_is_ok(f: &Fixture) {
    f.store().health().await.unwrap();
    f.store().health().await.unwrap();
    // The probe is deleted again.
    f.assert_fs_files(&[]);
}

crate::contract!(
    state_store,
    [fs => fs_store(), memory => memory_store(), s3 => s3_store()],
    [
        state_round_trip,
        display_messages_round_trip,
        never_saved_is_not_found,
        overwrite_replaces_whole_document,
        unsafe_ids_are_invalid_keys,
        undecodable_bytes_are_corrupt,
        readers_see_whole_documents_during_writes,
        delete_removes_one_session_whole,
        health_is_ok,
    ]
);
