//! The retention sweep: with `RETENTION_DAYS` set, archived conversations untouched for
//! that long are deleted, at start and then periodically, until shutdown. A pass under
//! way finishes its current conversation before the sweep stops, so shutdown never cuts
//! a deletion between its rows and its files.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::retention::Retention;

/// How long archived conversations are kept, and how often the sweep looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Time since an archived conversation was last touched before it is deleted.
    pub keep_archived: Duration,
    /// Pause between two passes.
    pub every: Duration,
}

/// Sweeps now and then every `policy.every` until `stop` is cancelled.
pub async fn keep_sweeping(
    retention: Arc<Retention>,
    policy: RetentionPolicy,
    stop: CancellationToken,
) {
    let keep = chrono::Duration::from_std(policy.keep_archived).unwrap_or(chrono::Duration::MAX);
    loop {
        let cutoff = ports::now().checked_sub_signed(keep);
        if let Some(cutoff) = cutoff {
            match retention.sweep(cutoff, &stop).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "retention: archived conversations deleted"),
                Err(e) => tracing::warn!(error = %e, "retention: sweep failed; retried next time"),
            }
        }
        if stop
            .run_until_cancelled(tokio::time::sleep(policy.every))
            .await
            .is_none()
        {
            return;
        }
    }
}
