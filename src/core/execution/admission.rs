//! Admission control: at most `MAX_CONCURRENT_RUNS` runs (async subagents included) go at
//! once. Beyond it a run is refused at once, before setup reads anything, instead of
//! queueing on the database pool until its timeout: a caller told "too many runs, retry in
//! a second" can back off, one left waiting 30 s cannot.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::request::RunError;

/// Default cap: spec 07's 1,000 concurrent runs fit under it.
pub const DEFAULT_MAX_CONCURRENT_RUNS: usize = 1024;

/// What a caller refused at the cap is told to wait before retrying.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The run slots.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    limit: usize,
}

/// A run's slot, held from setup until the run is finalized.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code, reason = "held for its Drop")] OwnedSemaphorePermit);

impl Admission {
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// A slot, or [`RunError::TooManyRuns`] when every slot is taken.
    pub fn admit(&self) -> Result<Slot, RunError> {
        self.slots
            .clone()
            .try_acquire_owned()
            .map(Slot)
            .map_err(|_| RunError::TooManyRuns { limit: self.limit })
    }

    /// Runs going now.
    pub fn in_use(&self) -> usize {
        self.limit - self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_beyond_the_limit_and_frees_a_slot_when_a_run_ends() {
        let admission = Admission::new(2);
        let first = admission.admit().unwrap();
        let _second = admission.admit().unwrap();
        assert!(matches!(
            admission.admit(),
            Err(RunError::TooManyRuns { limit: 2 })
        ));
        assert_eq!(admission.in_use(), 2);
        drop(first);
        assert_eq!(admission.in_use(), 1);
        assert!(admission.admit().is_ok());
    }
}
