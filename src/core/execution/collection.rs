//! Removing stored history that no session names any more, after deletions. It runs in
//! the background: a pass reads every stored state, which a deletion should not wait for,
//! and the deletions of a burst (a retention sweep) share passes. A pass cut short by
//! shutdown is harmless: what it left is removed by the next.

use std::sync::{Arc, Mutex, PoisonError};

use ports::StateStore;

pub(super) struct Collection {
    state_store: Arc<dyn StateStore>,
    passes: Mutex<Passes>,
}

#[derive(Default)]
struct Passes {
    running: bool,
    /// Requested while a pass ran: one more pass follows it.
    again: bool,
}

impl Collection {
    pub(super) fn new(state_store: Arc<dyn StateStore>) -> Arc<Self> {
        Arc::new(Self {
            state_store,
            passes: Mutex::default(),
        })
    }

    /// Makes sure a pass starts after this call.
    pub(super) fn request(self: &Arc<Self>) {
        {
            let mut passes = self.passes();
            if passes.running {
                passes.again = true;
                return;
            }
            passes.running = true;
        }
        let this = self.clone();
        tokio::spawn(async move { this.run().await });
    }

    async fn run(&self) {
        loop {
            match self.state_store.collect_garbage().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "unused stored history removed"),
                Err(e) => tracing::warn!(error = %e, "cannot remove unused stored history"),
            }
            let mut passes = self.passes();
            if !passes.again {
                passes.running = false;
                return;
            }
            passes.again = false;
        }
    }

    /// The flags are consistent after every critical section, so a poisoned lock is fine.
    fn passes(&self) -> std::sync::MutexGuard<'_, Passes> {
        self.passes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
