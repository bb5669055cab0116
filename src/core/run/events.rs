//! Where the loop's happenings go. The run engine's run log implements this; it must be
//! cheap and never block, because the loop calls it for every delta.

use ports::EventPayload;

/// Receives the loop's events in order.
pub trait EventSink: Send + Sync {
    /// One event of `agent_id` (`main` or a subagent's id).
    fn emit(&self, agent_id: &str, payload: EventPayload);
}

/// Collects events in memory: for tests and for nested runs that replay them later.
#[derive(Debug, Default)]
pub struct CollectingSink {
    events: std::sync::Mutex<Vec<(String, EventPayload)>>,
}

impl CollectingSink {
    /// Everything emitted so far.
    pub fn events(&self) -> Vec<(String, EventPayload)> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl EventSink for CollectingSink {
    fn emit(&self, agent_id: &str, payload: EventPayload) {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((agent_id.to_owned(), payload));
    }
}
