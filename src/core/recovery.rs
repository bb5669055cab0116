//! Startup recovery: a session still `created` at boot was orphaned by a crash (the
//! registry starts empty), so it is marked `failed` before the API accepts requests.

use ports::{SessionRepo, StorageError, now};

/// The reason recorded on recovered sessions.
pub const ORPHAN_REASON: &str = "the service stopped while this session was running";

/// Marks orphaned sessions failed; returns how many there were.
pub async fn fail_orphaned_sessions(sessions: &dyn SessionRepo) -> Result<u64, StorageError> {
    let n = sessions.fail_orphans(ORPHAN_REASON, now()).await?;
    if n > 0 {
        tracing::warn!(sessions = n, "marked orphaned sessions failed");
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use ports::mocks::MockSessionRepo;

    use super::*;

    #[tokio::test]
    async fn orphans_are_failed_with_a_reason() {
        let mut repo = MockSessionRepo::new();
        repo.expect_fail_orphans()
            .withf(|reason, _| reason == ORPHAN_REASON)
            .times(1)
            .returning(|_, _| Ok(3));
        assert_eq!(fail_orphaned_sessions(&repo).await.unwrap(), 3);
    }
}
