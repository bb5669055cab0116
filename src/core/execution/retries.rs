//! Safe retries (spec 06): a run request carrying a retry key (`Idempotency-Key`) starts its
//! run once. A repeat within [`KEY_LIFETIME`] with the same request finds that run instead
//! of starting another; a different request with a used key is refused. Keys live in the
//! database, so this holds across a restart.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ports::{Claim, ConversationId, IdempotencyRecord, IdempotencyRepo, SessionId, StorageError};

use super::request::{RunError, StartedRun};

/// How long a key is remembered.
pub const KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How long a repeat waits for the first request to finish starting its run.
const STARTING_WAIT: Duration = Duration::from_secs(10);

/// How often a waiting repeat looks again.
const POLL: Duration = Duration::from_millis(50);

/// Claims tried when the key is released under a repeat (its first request failed).
const CLAIM_ATTEMPTS: usize = 3;

/// A request's retry key and what the request asks for (the caller hashes its operation and
/// body into the fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryKey {
    pub key: String,
    pub fingerprint: String,
}

/// The run a request gets.
pub enum Begun {
    /// This request started it.
    Started(StartedRun),
    /// An earlier request with the same key and request started it.
    Repeat {
        session_id: SessionId,
        conversation_id: ConversationId,
    },
}

impl Begun {
    pub fn session_id(&self) -> &SessionId {
        match self {
            Self::Started(run) => &run.session_id,
            Self::Repeat { session_id, .. } => session_id,
        }
    }

    pub fn conversation_id(&self) -> &ConversationId {
        match self {
            Self::Started(run) => &run.conversation_id,
            Self::Repeat {
                conversation_id, ..
            } => conversation_id,
        }
    }
}

/// What a repeat found.
enum Found {
    Run(Begun),
    /// The first request gave the key up (its run could not start): claim it again.
    Released,
}

/// Starts runs at most once per retry key.
pub struct Retries {
    keys: Arc<dyn IdempotencyRepo>,
}

impl Retries {
    pub fn new(keys: Arc<dyn IdempotencyRepo>) -> Self {
        Self { keys }
    }

    /// Runs `start` unless an earlier request with `key` already started the run.
    ///
    /// # Errors
    /// `start`'s error (the key is then free again); `IdempotencyConflict` for a used key
    /// with another request, or while its first request is still starting.
    pub async fn begin<F, Fut>(&self, key: Option<RetryKey>, start: F) -> Result<Begun, RunError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StartedRun, RunError>>,
    {
        let Some(key) = key else {
            return start().await.map(Begun::Started);
        };
        for _ in 0..CLAIM_ATTEMPTS {
            let now = chrono::Utc::now();
            let expired_before = now - chrono::Duration::from_std(KEY_LIFETIME).unwrap_or_default();
            match self
                .keys
                .claim(&key.key, &key.fingerprint, now, expired_before)
                .await
            {
                Ok(Claim::Claimed) => return self.start_claimed(&key, start).await,
                Ok(Claim::Taken(record)) => match self.find(&key, record).await? {
                    Found::Run(begun) => return Ok(begun),
                    Found::Released => {}
                },
                Err(StorageError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(RunError::IdempotencyConflict(
            "the earlier requests with this Idempotency-Key keep failing to start; retry"
                .to_owned(),
        ))
    }

    async fn start_claimed<F, Fut>(&self, key: &RetryKey, start: F) -> Result<Begun, RunError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StartedRun, RunError>>,
    {
        match start().await {
            Ok(run) => {
                if let Err(e) = self
                    .keys
                    .settle(&key.key, &run.session_id, &run.conversation_id)
                    .await
                {
                    // The run goes on; a repeat waits for the key, then is refused.
                    tracing::warn!(key = %key.key, error = %e, "retry key not settled");
                }
                Ok(Begun::Started(run))
            }
            Err(refused) => {
                if let Err(e) = self.keys.release(&key.key).await {
                    tracing::warn!(key = %key.key, error = %e, "retry key not released");
                }
                Err(refused)
            }
        }
    }

    /// The run of a taken key, once its first request has started it.
    async fn find(&self, key: &RetryKey, record: IdempotencyRecord) -> Result<Found, RunError> {
        if record.fingerprint != key.fingerprint {
            return Err(RunError::IdempotencyConflict(
                "this Idempotency-Key was used with another request".to_owned(),
            ));
        }
        let deadline = tokio::time::Instant::now() + STARTING_WAIT;
        let mut record = record;
        loop {
            if let Some((session_id, conversation_id)) = record.run {
                return Ok(Found::Run(Begun::Repeat {
                    session_id,
                    conversation_id,
                }));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RunError::IdempotencyConflict(
                    "the first request with this Idempotency-Key is still starting its run"
                        .to_owned(),
                ));
            }
            tokio::time::sleep(POLL).await;
            match self.keys.get_claim(&key.key).await? {
                Some(again) => record = again,
                None => return Ok(Found::Released),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ports::mocks::MockIdempotencyRepo;
    use ports::{StreamKey, Transport};

    use super::*;
    use crate::core::execution::RunLog;

    fn key(fingerprint: &str) -> Option<RetryKey> {
        Some(RetryKey {
            key: "k".into(),
            fingerprint: fingerprint.into(),
        })
    }

    fn started(session: &str) -> StartedRun {
        let session_id = SessionId::from(session.to_owned());
        StartedRun {
            stream_key: StreamKey::for_session(&session_id),
            conversation_id: ConversationId::from(session.to_owned()),
            transport: Transport::Stream,
            log: RunLog::new(session),
            session_id,
        }
    }

    fn record(fingerprint: &str, run: Option<&str>) -> IdempotencyRecord {
        IdempotencyRecord {
            key: "k".into(),
            fingerprint: fingerprint.into(),
            run: run.map(|s| {
                (
                    SessionId::from(s.to_owned()),
                    ConversationId::from(s.to_owned()),
                )
            }),
            created_at: chrono::Utc::now(),
        }
    }

    /// A start that counts its calls.
    fn counting(
        calls: &AtomicUsize,
    ) -> impl FnOnce() -> std::future::Ready<Result<StartedRun, RunError>> + '_ {
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(started("s1")))
        }
    }

    #[tokio::test]
    async fn without_a_key_every_request_starts_a_run() {
        let retries = Retries::new(Arc::new(MockIdempotencyRepo::new()));
        let calls = AtomicUsize::new(0);
        let begun = retries.begin(None, counting(&calls)).await.unwrap();
        assert!(matches!(begun, Begun::Started(_)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_claimed_key_starts_the_run_and_records_it() {
        let mut keys = MockIdempotencyRepo::new();
        keys.expect_claim()
            .withf(|k, fp, now, before| {
                k == "k" && fp == "fp" && *now - *before == chrono::Duration::hours(24)
            })
            .returning(|_, _, _, _| Ok(Claim::Claimed));
        keys.expect_settle()
            .withf(|k, s, _| k == "k" && s.as_str() == "s1")
            .times(1)
            .returning(|_, _, _| Ok(()));
        let calls = AtomicUsize::new(0);
        let begun = Retries::new(Arc::new(keys))
            .begin(key("fp"), counting(&calls))
            .await
            .unwrap();
        assert_eq!(begun.session_id().as_str(), "s1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_start_frees_the_key() {
        let mut keys = MockIdempotencyRepo::new();
        keys.expect_claim()
            .returning(|_, _, _, _| Ok(Claim::Claimed));
        keys.expect_release().times(1).returning(|_| Ok(()));
        let result = Retries::new(Arc::new(keys))
            .begin(key("fp"), || {
                std::future::ready(Err(RunError::MailboxEmpty))
            })
            .await;
        assert!(matches!(result, Err(RunError::MailboxEmpty)));
    }

    #[tokio::test]
    async fn a_repeat_finds_the_run_without_starting_another() {
        let mut keys = MockIdempotencyRepo::new();
        keys.expect_claim()
            .returning(|_, _, _, _| Ok(Claim::Taken(record("fp", Some("s0")))));
        let calls = AtomicUsize::new(0);
        let begun = Retries::new(Arc::new(keys))
            .begin(key("fp"), counting(&calls))
            .await
            .unwrap();
        assert!(matches!(&begun, Begun::Repeat { session_id, .. } if session_id.as_str() == "s0"));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn another_request_with_a_used_key_is_a_conflict() {
        let mut keys = MockIdempotencyRepo::new();
        keys.expect_claim()
            .returning(|_, _, _, _| Ok(Claim::Taken(record("other", Some("s0")))));
        let calls = AtomicUsize::new(0);
        let result = Retries::new(Arc::new(keys))
            .begin(key("fp"), counting(&calls))
            .await;
        assert!(matches!(result, Err(RunError::IdempotencyConflict(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeat_waits_for_the_first_request_to_start_its_run() {
        let mut keys = MockIdempotencyRepo::new();
        keys.expect_claim()
            .returning(|_, _, _, _| Ok(Claim::Taken(record("fp", None))));
        let mut looks = 0;
        keys.expect_get_claim().returning(move |_| {
            looks += 1;
            Ok(Some(record("fp", (looks >= 3).then_some("s0"))))
        });
        let calls = AtomicUsize::new(0);
        let begun = Retries::new(Arc::new(keys))
            .begin(key("fp"), counting(&calls))
            .await
            .unwrap();
        assert_eq!(begun.session_id().as_str(), "s0");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_key_is_claimed_again() {
        let mut keys = MockIdempotencyRepo::new();
        let mut claims = 0;
        keys.expect_claim().returning(move |_, _, _, _| {
            claims += 1;
            Ok(if claims == 1 {
                Claim::Taken(record("fp", None))
            } else {
                Claim::Claimed
            })
        });
        keys.expect_get_claim().returning(|_| Ok(None));
        keys.expect_settle().returning(|_, _, _| Ok(()));
        let calls = AtomicUsize::new(0);
        let begun = Retries::new(Arc::new(keys))
            .begin(key("fp"), counting(&calls))
            .await
            .unwrap();
        assert!(matches!(begun, Begun::Started(_)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
