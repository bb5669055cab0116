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

    /// For fs, asserts the files under the root besides history segments are exactly
    /// `expected` (relative paths): documents land where spec 01 says, and no temp file
    /// survives a write.
    fn assert_fs_files(&self, expected: &[String]) {
        if let Backend::Fs(dir) = &self.backend {
            let mut found = BTreeSet::new();
            collect_files(dir.path(), dir.path(), &mut found);
            found.retain(|f| !f.starts_with("history/"));
            let expected: BTreeSet<String> = expected.iter().cloned().collect();
            assert_eq!(found, expected, "files under the fs root");
        }
    }

    /// For fs, the history segment files (relative paths).
    fn fs_segments(&self) -> Option<BTreeSet<String>> {
        let Backend::Fs(dir) = &self.backend else {
            return None;
        };
        let mut found = BTreeSet::new();
        collect_files(dir.path(), dir.path(), &mut found);
        found.retain(|f| f.starts_with("history/"));
        Some(found)
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
        // state.json holds the context and names the histories' segments.
        let on_disk = std::fs::read(dir.path().join(state_key(&id))).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&on_disk).unwrap();
        assert_eq!(doc["context_state"]["handoff_notes"], "notes round");
        assert_eq!(
            doc["context_state"]["subagent_histories"],
            serde_json::json!({})
        );
        assert_eq!(doc["history"][0]["messages"], 4);
        assert_eq!(doc["subagent_segments"]["researcher"][0]["messages"], 1);
        assert!(doc.get("message_history").is_none(), "{doc}");
        // One segment for the history (4 messages), one for the subagent's.
        assert_eq!(f.fs_segments().unwrap().len(), 2);
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

/// A user message and an answer of about 200 bytes each: one turn of a conversation.
fn turn(i: usize) -> [ModelMessage; 2] {
    let text = |who: &str| format!("{who} {i}: {}", "lorem ipsum ".repeat(16));
    [
        ModelMessage::User {
            parts: vec![UserPart::Text { text: text("user") }],
        },
        ModelMessage::Assistant {
            parts: vec![AssistantPart::Text {
                text: text("assistant"),
            }],
        },
    ]
}

/// The snapshot after `turns` turns.
fn after_turns(turns: usize) -> SessionState {
    SessionState {
        message_history: (0..turns).flat_map(turn).collect(),
        ..sample_state("chain")
    }
}

/// A continued snapshot shares its parent's history: it stores only the segments its
/// new messages made, and both load whole.
async fn continued_snapshots_share_their_history(f: &Fixture) {
    let store = f.store();
    let (parent, child) = (
        SessionId::from(support::unique("sess")),
        SessionId::from(support::unique("sess")),
    );
    store.save_state(&parent, &after_turns(100)).await.unwrap();
    let before = f.fs_segments();
    store.save_state(&child, &after_turns(101)).await.unwrap();
    assert_eq!(store.load_state(&parent).await.unwrap(), after_turns(100));
    assert_eq!(store.load_state(&child).await.unwrap(), after_turns(101));
    if let (Some(before), Some(after)) = (before, f.fs_segments()) {
        // 200 → 202 messages: 3×64 + 2×4 → 3×64 + 2×4 + a 2-message tail.
        let added: Vec<_> = after.difference(&before).collect();
        assert_eq!(added.len(), 1, "{added:?}");
    }
    // Saving the same snapshot again writes nothing new.
    let count = f.fs_segments().map(|s| s.len());
    store.save_state(&child, &after_turns(101)).await.unwrap();
    assert_eq!(f.fs_segments().map(|s| s.len()), count);
}

/// Collection removes exactly the segments no stored state names: after deleting a
/// child, its parent and an unrelated session still load; after deleting everything,
/// nothing is left; a second collection finds nothing.
async fn collection_removes_only_unnamed_segments(f: &Fixture) {
    let store = f.store();
    let ids: Vec<SessionId> = (0..3)
        .map(|_| SessionId::from(support::unique("sess")))
        .collect();
    store.save_state(&ids[0], &after_turns(40)).await.unwrap();
    store.save_state(&ids[1], &after_turns(45)).await.unwrap();
    store.save_state(&ids[2], &large_state('c')).await.unwrap();
    assert_eq!(store.collect_garbage().await.unwrap(), 0, "all named");

    store.delete_session(&ids[1]).await.unwrap();
    let removed = store.collect_garbage().await.unwrap();
    assert!(removed > 0, "the child's own segments go");
    assert_eq!(store.load_state(&ids[0]).await.unwrap(), after_turns(40));
    assert!(store.load_state(&ids[2]).await.unwrap() == large_state('c'));
    assert_eq!(store.collect_garbage().await.unwrap(), 0);

    store.delete_session(&ids[0]).await.unwrap();
    store.delete_session(&ids[2]).await.unwrap();
    assert!(store.collect_garbage().await.unwrap() > 0);
    if let Some(left) = f.fs_segments() {
        assert!(left.is_empty(), "{left:?}");
    }
    // A segment removed is stored again by the next save that needs it.
    store.save_state(&ids[0], &after_turns(40)).await.unwrap();
    assert_eq!(store.load_state(&ids[0]).await.unwrap(), after_turns(40));
}

/// Saves continuing one history race collections that follow deletions: every session
/// still stored loads whole afterwards.
async fn saves_racing_collections_lose_nothing(f: &Fixture) {
    const SAVES: usize = 24;
    let store = f.store.clone();
    let collecting = Arc::new(AtomicBool::new(true));
    let collector = {
        let (store, collecting) = (store.clone(), collecting.clone());
        tokio::spawn(async move {
            let mut rounds = 0;
            while collecting.load(Ordering::Acquire) {
                store.collect_garbage().await.unwrap();
                rounds += 1;
                tokio::task::yield_now().await;
            }
            rounds
        })
    };
    let mut kept = Vec::new();
    for i in 0..SAVES {
        let id = SessionId::from(support::unique("sess"));
        store.save_state(&id, &after_turns(10 + i)).await.unwrap();
        // Every other session is deleted again, so its own segments become garbage.
        if i % 2 == 1 {
            store.delete_session(&id).await.unwrap();
        } else {
            kept.push((id, i));
        }
    }
    collecting.store(false, Ordering::Release);
    assert!(collector.await.unwrap() > 0);
    store.collect_garbage().await.unwrap();
    for (id, i) in kept {
        assert_eq!(store.load_state(&id).await.unwrap(), after_turns(10 + i));
    }
}

/// A state whose segment is gone is corrupt, not absent; a document of the earlier,
/// inline form still loads.
async fn missing_segments_are_corrupt_and_inline_documents_load(f: &Fixture) {
    let Backend::Fs(dir) = &f.backend else {
        eprintln!("note: the file layout is checked on fs only");
        return;
    };
    let store = f.store();
    let id = SessionId::from(support::unique("sess"));
    store.save_state(&id, &after_turns(3)).await.unwrap();
    for segment in f.fs_segments().unwrap() {
        std::fs::remove_file(dir.path().join(segment)).unwrap();
    }
    let state = store.load_state(&id).await;
    assert!(
        matches!(state, Err(StateStoreError::Corrupt(_))),
        "{state:?}"
    );

    let inline = serde_json::to_vec(&after_turns(3)).unwrap();
    std::fs::write(dir.path().join(state_key(&id)), inline).unwrap();
    assert_eq!(store.load_state(&id).await.unwrap(), after_turns(3));
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
        continued_snapshots_share_their_history,
        collection_removes_only_unnamed_segments,
        saves_racing_collections_lose_nothing,
        missing_segments_are_corrupt_and_inline_documents_load,
        health_is_ok,
    ]
);

/// Bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let mut files = BTreeSet::new();
    collect_files(dir, dir, &mut files);
    files
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
        .sum()
}

/// A conversation of 1,000 turns, one snapshot per turn, each kept (as the session DAG
/// keeps them): with histories stored once, the store grows linearly with the turns.
/// "Before" is what a whole history per snapshot costs: the sum of the documents the
/// store wrote before segments (`SessionState` as JSON). Both figures are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_turn_conversation_costs_linear_space() {
    const TURNS: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let store = OpendalStateStore::local(dir.path()).unwrap();
    let mut whole_per_snapshot = 0u64;
    let mut at_half = 0;
    let mut state = after_turns(0);
    // A whole document's length, kept up to date message by message: the empty one's
    // plus each message and the commas between them.
    let mut whole = serde_json::to_vec(&state).unwrap().len() as u64;
    for i in 0..TURNS {
        for message in turn(i) {
            let comma = u64::from(!state.message_history.is_empty());
            whole += serde_json::to_vec(&message).unwrap().len() as u64 + comma;
            state.message_history.push(message);
        }
        let id = SessionId::from(format!("turn-{i:04}"));
        store.save_state(&id, &state).await.unwrap();
        whole_per_snapshot += whole;
        if i + 1 == TURNS / 2 {
            at_half = bytes_under(dir.path());
        }
    }
    let segmented = bytes_under(dir.path());
    let history = serde_json::to_vec(&state.message_history).unwrap().len() as u64;
    println!(
        "{TURNS} turns ({} messages, {history} bytes of history): whole history per snapshot \
         {whole_per_snapshot} bytes, segments {segmented} bytes ({at_half} at {} turns)",
        state.message_history.len(),
        TURNS / 2
    );
    // Linear: twice the turns, about twice the bytes (quadratic would be four times).
    let growth = segmented as f64 / at_half as f64;
    assert!(
        growth < 2.3,
        "500 → 1,000 turns grew the store {growth:.2}×"
    );
    // A small multiple of the final history (chunk levels, tails, per-snapshot context).
    assert!(segmented < 8 * history, "{segmented} bytes for {history}");
    assert!(segmented * 50 < whole_per_snapshot);
    assert_eq!(
        whole,
        serde_json::to_vec(&state).unwrap().len() as u64,
        "the whole document's length was tracked exactly"
    );
    let last = store
        .load_state(&SessionId::from(format!("turn-{:04}", TURNS - 1)))
        .await
        .unwrap();
    assert!(last == state);
}
