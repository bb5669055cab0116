//! State store adapter on opendal: local filesystem, S3 or memory behind one `StateStore`.
//!
//! Invariant: a document is replaced whole or not at all. The fs backend writes a temp
//! file under `<root>/.tmp` and renames it over the target (inside the root, so the rename
//! never crosses filesystems and stays atomic); an S3 PUT and a memory insert replace the
//! object in one step. Readers hold one open file or one response, so they see one version.
//!
//! Histories are stored apart, as immutable content-addressed segments ([`segments`])
//! that `state.json` names; a save writes its missing segments before the document that
//! names them, so a reader of any whole document finds all of its segments.

mod collector;
mod document;
mod keys;
mod segments;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use opendal::{ErrorKind, Operator, services};
use ports::SessionId;
use ports::{DisplayMessage, ModelMessage, SessionState, StateStore, StateStoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::collector::Collector;
use self::document::StoredState;
use self::segments::SegmentRef;
use crate::boxed;

/// Temp dir of atomic fs writes, relative to the root. Session ids cannot contain dots,
/// so it never collides with a session key.
const ATOMIC_WRITE_DIR: &str = ".tmp";

/// Signing region when none is configured; S3-compatible servers (MinIO, moto) accept it.
const DEFAULT_REGION: &str = "us-east-1";

/// Bytes of the health probe; constant so the read-back check is a plain comparison.
const PROBE: &[u8] = b"ok";

/// Objects read at once when loading a history or marking segments in use.
const READS_AT_ONCE: usize = 8;

/// Where an S3 (or S3-compatible) state store lives.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// Full URL such as `http://127.0.0.1:9000`; `None` = AWS for the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// Static credentials; when absent opendal's default chain (env, profile, IMDS) is used.
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// `None` = `us-east-1`.
    pub region: Option<String>,
}

/// Redacts the secret key so settings can be logged.
impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("region", &self.region)
            .finish()
    }
}

/// `StateStore` on any opendal operator; the constructors pick the backend.
#[derive(Clone)]
pub struct OpendalStateStore {
    op: Operator,
    collector: Arc<Collector>,
}

impl fmt::Debug for OpendalStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.op.info();
        f.debug_struct("OpendalStateStore")
            .field("scheme", &info.scheme())
            .field("root", &info.root())
            .field("name", &info.name())
            .finish()
    }
}

impl OpendalStateStore {
    /// Files under `root` (created if missing), e.g. `./data/sessions/{id}/state.json`.
    ///
    /// # Errors
    /// `Unavailable` when the root is not UTF-8 or cannot be created.
    pub fn local(root: &Path) -> Result<Self, StateStoreError> {
        let utf8 = |p: &Path| {
            p.to_str().map(str::to_owned).ok_or_else(|| {
                StateStoreError::Unavailable(format!("path is not UTF-8: {}", p.display()).into())
            })
        };
        let builder = services::Fs::default()
            .root(&utf8(root)?)
            .atomic_write_dir(&utf8(&root.join(ATOMIC_WRITE_DIR))?);
        Self::with(builder)
    }

    /// Objects at the top of `settings.bucket`. No request is sent until first use.
    ///
    /// # Errors
    /// `Unavailable` when opendal rejects the settings (e.g. an empty bucket).
    pub fn s3(settings: S3Settings) -> Result<Self, StateStoreError> {
        let mut builder = services::S3::default()
            .bucket(&settings.bucket)
            .region(settings.region.as_deref().unwrap_or(DEFAULT_REGION));
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(key) = &settings.access_key {
            builder = builder.access_key_id(key);
        }
        if let Some(secret) = &settings.secret_key {
            builder = builder.secret_access_key(secret);
        }
        Self::with(builder)
    }

    /// In-process map, lost on exit; for tests and single-process development.
    ///
    /// # Errors
    /// None in practice; the signature matches the other constructors.
    pub fn memory() -> Result<Self, StateStoreError> {
        Self::with(services::Memory::default())
    }

    fn with(builder: impl opendal::Builder) -> Result<Self, StateStoreError> {
        let op = Operator::new(builder).map_err(unavailable)?;
        Ok(Self {
            op,
            collector: Arc::default(),
        })
    }

    async fn put(&self, key: &str, doc: &impl Serialize) -> Result<(), StateStoreError> {
        // Encoding fails only for documents that can never be stored; retrying is useless,
        // so it is `Corrupt`, not `Unavailable`.
        let bytes = serde_json::to_vec(doc).map_err(|e| StateStoreError::Corrupt(boxed(e)))?;
        self.write_whole(key, bytes).await
    }

    async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, StateStoreError> {
        let buf = self.op.read(key).await.map_err(not_found_or_unavailable)?;
        serde_json::from_slice(&buf.to_bytes()).map_err(|e| StateStoreError::Corrupt(boxed(e)))
    }

    /// One write then close; on failure the writer is aborted so the fs temp file does not
    /// linger (the target was never touched).
    async fn write_whole(&self, key: &str, bytes: Vec<u8>) -> Result<(), StateStoreError> {
        let mut w = self.op.writer(key).await.map_err(unavailable)?;
        let written = match w.write(bytes).await {
            Ok(()) => w.close().await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            if let Err(abort) = w.abort().await {
                tracing::debug!(key, error = %abort, "state store: abort after failed write");
            }
            return Err(unavailable(e));
        }
        Ok(())
    }
}

/// Histories: stored as segments, read back whole.
impl OpendalStateStore {
    /// Stores the segments of `history` that are not stored yet; returns their names.
    async fn store_history(
        &self,
        history: &[ModelMessage],
    ) -> Result<Vec<SegmentRef>, StateStoreError> {
        let mut names = Vec::new();
        for range in segments::cut(history.len()) {
            let segment = segments::encode(&history[range])
                .map_err(|e| StateStoreError::Corrupt(boxed(e)))?;
            let sha256 = &segment.reference.sha256;
            if !self.collector.is_known(sha256) {
                let key = keys::segment(sha256)?;
                if !self.op.exists(&key).await.map_err(unavailable)? {
                    self.write_whole(&key, segment.bytes).await?;
                }
                self.collector.know(sha256);
            }
            names.push(segment.reference);
        }
        self.collector.named(&names);
        Ok(names)
    }

    /// The history the segments hold, in order.
    async fn load_history(
        &self,
        names: &[SegmentRef],
    ) -> Result<Vec<ModelMessage>, StateStoreError> {
        // Owned items: a stream over borrowed ones is not `Send` for every lifetime.
        let parts: Vec<Vec<ModelMessage>> = futures::stream::iter(names.to_vec())
            .map(|name| async move { self.load_segment(&name).await })
            .buffered(READS_AT_ONCE)
            .try_collect()
            .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// One segment; a missing one means its snapshot is damaged, not absent.
    async fn load_segment(&self, name: &SegmentRef) -> Result<Vec<ModelMessage>, StateStoreError> {
        let key = keys::segment(&name.sha256)?;
        let messages: Vec<ModelMessage> = match self.get(&key).await {
            Err(StateStoreError::NotFound) => {
                return Err(StateStoreError::Corrupt(
                    format!("history segment {} is missing", name.sha256).into(),
                ));
            }
            other => other?,
        };
        if messages.len() != name.messages {
            return Err(StateStoreError::Corrupt(
                format!(
                    "history segment {} holds {} messages, not {}",
                    name.sha256,
                    messages.len(),
                    name.messages
                )
                .into(),
            ));
        }
        Ok(messages)
    }
}

/// Collection: removing the segments no snapshot names.
impl OpendalStateStore {
    /// The segments named by every stored `state.json`.
    async fn named_segments(&self) -> Result<HashSet<String>, StateStoreError> {
        let mut documents = self.keys_under(keys::SESSIONS).await?;
        documents.retain(|key| keys::is_state(key));
        let named: Vec<Option<StoredState>> = futures::stream::iter(documents)
            .map(|key| async move {
                match self.get::<StoredState>(&key).await {
                    // Deleted since the listing: it names nothing any more.
                    Err(StateStoreError::NotFound) => Ok(None),
                    other => other.map(Some),
                }
            })
            .buffer_unordered(READS_AT_ONCE)
            .try_collect()
            .await?;
        Ok(named
            .iter()
            .flatten()
            .flat_map(StoredState::segments)
            .map(|s| s.sha256.clone())
            .collect())
    }

    /// Every stored segment: its name and key.
    async fn stored_segments(&self) -> Result<Vec<(String, String)>, StateStoreError> {
        let keys = self.keys_under(keys::SEGMENTS).await?;
        Ok(keys
            .into_iter()
            .filter_map(|key| keys::segment_of(&key).map(|name| (name.to_owned(), key.clone())))
            .collect())
    }

    /// Every key under `prefix`, at any depth.
    async fn keys_under(&self, prefix: &str) -> Result<Vec<String>, StateStoreError> {
        let listed = self
            .op
            .list_with(prefix)
            .recursive(true)
            .await
            .map_err(unavailable)?;
        Ok(listed.into_iter().map(|e| e.path().to_owned()).collect())
    }
}

#[async_trait]
impl StateStore for OpendalStateStore {
    async fn save_state(
        &self,
        session_id: &SessionId,
        state: &SessionState,
    ) -> Result<(), StateStoreError> {
        let key = keys::state(session_id.as_str())?;
        let _saving = self.collector.saving().await;
        let history = self.store_history(&state.message_history).await?;
        let mut subagent_segments = BTreeMap::new();
        for (name, history) in &state.context_state.subagent_histories {
            subagent_segments.insert(name.clone(), self.store_history(history).await?);
        }
        let document = StoredState {
            context_state: document::without_histories(&state.context_state),
            history: Some(history),
            subagent_segments,
            message_history: Vec::new(),
        };
        self.put(&key, &document).await
    }

    async fn load_state(&self, session_id: &SessionId) -> Result<SessionState, StateStoreError> {
        let document: StoredState = self.get(&keys::state(session_id.as_str())?).await?;
        let message_history = match &document.history {
            Some(names) => self.load_history(names).await?,
            None => document.message_history,
        };
        let mut context_state = document.context_state;
        for (name, names) in &document.subagent_segments {
            let history = self.load_history(names).await?;
            context_state
                .subagent_histories
                .insert(name.clone(), history);
        }
        Ok(SessionState {
            context_state,
            message_history,
        })
    }

    async fn save_display_messages(
        &self,
        session_id: &SessionId,
        messages: &[DisplayMessage],
    ) -> Result<(), StateStoreError> {
        let session_id = session_id.as_str();
        self.put(&keys::display_messages(session_id)?, &messages)
            .await
    }

    async fn load_display_messages(
        &self,
        session_id: &SessionId,
    ) -> Result<Vec<DisplayMessage>, StateStoreError> {
        let session_id = session_id.as_str();
        self.get(&keys::display_messages(session_id)?).await
    }

    async fn delete_session(&self, session_id: &SessionId) -> Result<(), StateStoreError> {
        let session_id = session_id.as_str();
        // A recursive delete lists the prefix, which on S3 holds only this session's objects.
        self.op
            .delete_with(&keys::session_dir(session_id)?)
            .recursive(true)
            .await
            .map_err(unavailable)
    }

    async fn collect_garbage(&self) -> Result<u64, StateStoreError> {
        let collection = self.collector.begin().await;
        let named = self.named_segments().await?;
        let stored = self.stored_segments().await?;
        let (_gate, named_meanwhile) = collection.sweep().await;
        let mut removed = 0;
        for (name, key) in stored {
            if named.contains(&name) || named_meanwhile.contains(&name) {
                continue;
            }
            self.op.delete(&key).await.map_err(unavailable)?;
            collection.removed(&name);
            removed += 1;
        }
        Ok(removed)
    }

    /// Writes, reads back and deletes a probe, so both directions are proven.
    async fn health(&self) -> Result<(), StateStoreError> {
        let key = keys::health_probe();
        self.write_whole(&key, PROBE.to_vec()).await?;
        let read = self.op.read(&key).await.map_err(unavailable);
        // Delete before judging the read, so a failed check leaves no probe behind.
        let deleted = self.op.delete(&key).await.map_err(unavailable);
        if read?.to_bytes() != PROBE {
            return Err(StateStoreError::Unavailable(
                "health probe read back different bytes".into(),
            ));
        }
        deleted
    }
}

/// For reads: a missing object is `NotFound`. Only reads use it, since on a write a
/// "not found" (e.g. a missing S3 bucket) means the store is unusable, not the session.
fn not_found_or_unavailable(e: opendal::Error) -> StateStoreError {
    if e.kind() == ErrorKind::NotFound {
        StateStoreError::NotFound
    } else {
        unavailable(e)
    }
}

fn unavailable(e: opendal::Error) -> StateStoreError {
    StateStoreError::Unavailable(boxed(e))
}
