//! How callers reach a running loop: interrupt (a cancel token plus a reason) and the
//! steering queue (`steering.rs`).

use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use super::steering::SteeringQueue;

#[derive(Debug, Default)]
struct Interrupt {
    reason: Option<String>,
}

/// The control handle of one run; clones share it.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    cancel: CancellationToken,
    interrupt: Arc<Mutex<Interrupt>>,
    steering: Arc<SteeringQueue>,
}

impl RunControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// The control of a nested agent (a sync subagent): the parent's interrupt reaches it,
    /// but it has a steering queue of its own, so it never eats the parent's guidance.
    pub fn nested(&self) -> Self {
        Self {
            cancel: self.cancel.clone(),
            interrupt: self.interrupt.clone(),
            steering: Arc::default(),
        }
    }

    /// Stops the run: the model stream is dropped and running tools are killed.
    pub fn interrupt(&self, reason: Option<String>) {
        {
            let mut state = self
                .interrupt
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if state.reason.is_none() {
                state.reason = reason;
            }
        }
        self.cancel.cancel();
    }

    pub fn is_interrupted(&self) -> bool {
        self.cancel.is_cancelled()
    }

    pub fn interrupt_reason(&self) -> Option<String> {
        self.interrupt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reason
            .clone()
    }

    /// Resolves when the run is interrupted.
    pub async fn interrupted(&self) {
        self.cancel.cancelled().await;
    }

    /// The run's steering queue.
    pub fn steering(&self) -> &SteeringQueue {
        &self.steering
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::run::Steer;

    fn steer(text: &str) -> Steer {
        Steer {
            message_id: text.into(),
            parts: vec![ports::UserPart::Text { text: text.into() }],
            text: text.into(),
        }
    }

    #[test]
    fn a_nested_control_shares_the_interrupt_but_not_the_steering() {
        let parent = RunControl::new();
        let nested = parent.nested();
        parent.steering().push(steer("for the parent")).unwrap();
        assert_eq!(nested.steering().take(), vec![]);
        assert!(!nested.is_interrupted());
        parent.interrupt(Some("user".into()));
        assert!(nested.is_interrupted());
        assert_eq!(nested.interrupt_reason().as_deref(), Some("user"));
        assert_eq!(parent.steering().take(), vec![steer("for the parent")]);
    }

    #[test]
    fn the_first_interrupt_reason_wins() {
        let c = RunControl::new();
        c.interrupt(Some("user".into()));
        c.interrupt(Some("shutdown".into()));
        assert!(c.is_interrupted());
        assert_eq!(c.interrupt_reason().as_deref(), Some("user"));
    }
}
