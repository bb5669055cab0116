//! Readiness of the three backends, as `/api/health` reports it.

use std::sync::Arc;

use ports::{Database, EventBus, StateStore};

/// Whether each backend answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthReport {
    pub database: bool,
    pub event_bus: bool,
    pub state_store: bool,
    /// Whether the kernel enforces the shell sandbox (Landlock); fixed at start.
    pub sandbox: bool,
}

/// Asks every backend at once; a slow backend cannot hold the others up.
pub struct HealthCheck {
    database: Arc<dyn Database>,
    event_bus: Arc<dyn EventBus>,
    state_store: Arc<dyn StateStore>,
    timeout: std::time::Duration,
    sandbox: bool,
}

impl HealthCheck {
    pub fn new(
        database: Arc<dyn Database>,
        event_bus: Arc<dyn EventBus>,
        state_store: Arc<dyn StateStore>,
        timeout: std::time::Duration,
    ) -> Self {
        Self {
            database,
            event_bus,
            state_store,
            timeout,
            sandbox: false,
        }
    }

    /// Reports the shell sandbox as available (it is checked once, at start).
    pub fn with_sandbox(mut self, available: bool) -> Self {
        self.sandbox = available;
        self
    }

    pub async fn check(&self) -> HealthReport {
        let t = self.timeout;
        let (database, event_bus, state_store) = tokio::join!(
            tokio::time::timeout(t, self.database.health()),
            tokio::time::timeout(t, self.event_bus.health()),
            tokio::time::timeout(t, self.state_store.health()),
        );
        HealthReport {
            database: matches!(database, Ok(Ok(()))),
            event_bus: matches!(event_bus, Ok(Ok(()))),
            state_store: matches!(state_store, Ok(Ok(()))),
            sandbox: self.sandbox,
        }
    }
}
