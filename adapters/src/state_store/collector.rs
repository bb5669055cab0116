//! Which history segments are stored, and when one may go.
//!
//! Segments are shared between snapshots, so deleting a session cannot delete its
//! segments; a collection does, mark and sweep: the segments no `state.json` names are
//! removed. A save racing a collection must not lose a segment it reuses, so saves hold a
//! read gate while they write segments and their `state.json`, and record what they named
//! while a collection runs; the collection starts behind the gate (saves under way finish
//! first, so the mark sees their documents), and sweeps behind it, sparing every segment
//! a save named meanwhile. This holds within one process, the service's deployment.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::{MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::segments::SegmentRef;

/// Names of segments known to be stored are forgotten past this many, so the set stays
/// small; a forgotten one costs one existence check on its next save.
const MAX_KNOWN: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct Collector {
    gate: RwLock<()>,
    /// Segments saves named since the running collection began; `None` when none runs.
    named_meanwhile: Mutex<Option<HashSet<String>>>,
    /// Segments this process stored or found stored, so saves skip rewriting them.
    known: Mutex<HashSet<String>>,
    /// One collection at a time.
    running: tokio::sync::Mutex<()>,
}

/// A collection under way; dropping it (also on an error) stops recording names.
pub(super) struct Collection<'a> {
    collector: &'a Collector,
    _one: MutexGuard<'a, ()>,
}

impl Collector {
    /// Held by a save from its first segment to its `state.json`.
    pub async fn saving(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// A save names `segments`: they survive a collection under way.
    pub fn named(&self, segments: &[SegmentRef]) {
        if let Some(named) = lock(&self.named_meanwhile).as_mut() {
            named.extend(segments.iter().map(|s| s.sha256.clone()));
        }
    }

    pub fn is_known(&self, sha256: &str) -> bool {
        lock(&self.known).contains(sha256)
    }

    pub fn know(&self, sha256: &str) {
        let mut known = lock(&self.known);
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(sha256.to_owned());
    }

    /// Starts a collection once the saves under way have finished.
    pub async fn begin(&self) -> Collection<'_> {
        let one = self.running.lock().await;
        let _barrier = self.gate.write().await;
        *lock(&self.named_meanwhile) = Some(HashSet::new());
        Collection {
            collector: self,
            _one: one,
        }
    }
}

impl Collection<'_> {
    /// Stops saves until the returned guard drops, and hands over what saves named since
    /// the collection began.
    pub async fn sweep(&self) -> (RwLockWriteGuard<'_, ()>, HashSet<String>) {
        let gate = self.collector.gate.write().await;
        let named = lock(&self.collector.named_meanwhile)
            .take()
            .unwrap_or_default();
        (gate, named)
    }

    /// A segment was removed.
    pub fn removed(&self, sha256: &str) {
        lock(&self.collector.known).remove(sha256);
    }
}

impl Drop for Collection<'_> {
    fn drop(&mut self) {
        *lock(&self.collector.named_meanwhile) = None;
    }
}

/// The sets are left consistent by every critical section, so a poisoned lock is still
/// usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
