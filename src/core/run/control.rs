//! How callers reach a running loop: interrupt (a cancel token plus a reason) and the
//! steering queue. The queue closes atomically when the run decides to finish, so a steer
//! either reaches the model or is refused to its sender; it is never silently dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::core::limits;

/// A steering message waiting for the next step boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steer {
    pub message_id: String,
    pub text: String,
}

/// Why a steer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SteerRefused {
    #[error("the run has finished and takes no more steering")]
    Closed,
    /// The queue holds [`limits::MAX_QUEUED_STEERS`] messages the run has not taken yet.
    #[error(
        "{max} steering messages already wait for the run's next step; retry once it took them"
    )]
    QueueFull { max: usize },
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Steer>,
    closed: bool,
}

#[derive(Debug, Default)]
struct Interrupt {
    reason: Option<String>,
}

/// The control handle of one run; clones share it.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    cancel: CancellationToken,
    interrupt: Arc<Mutex<Interrupt>>,
    steering: Arc<Mutex<Queue>>,
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

    /// Queues a steering message for the next step boundary; at most
    /// [`limits::MAX_QUEUED_STEERS`] wait at once, so a flood of steers cannot grow the
    /// run's memory (and its next step) without bound.
    ///
    /// # Errors
    /// [`SteerRefused::Closed`] once the run has decided to finish,
    /// [`SteerRefused::QueueFull`] while the queue is full.
    pub fn steer(&self, steer: Steer) -> Result<(), SteerRefused> {
        let mut queue = self.steering.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.closed {
            return Err(SteerRefused::Closed);
        }
        if queue.items.len() >= limits::MAX_QUEUED_STEERS {
            return Err(SteerRefused::QueueFull {
                max: limits::MAX_QUEUED_STEERS,
            });
        }
        queue.items.push_back(steer);
        Ok(())
    }

    /// Takes the queued messages.
    pub(crate) fn take_steering(&self) -> Vec<Steer> {
        let mut queue = self.steering.lock().unwrap_or_else(PoisonError::into_inner);
        queue.items.drain(..).collect()
    }

    /// Takes the queued messages; when there are none, closes the queue in the same step,
    /// so nothing can arrive between "nothing pending" and "finished".
    pub(crate) fn take_steering_or_close(&self) -> Vec<Steer> {
        let mut queue = self.steering.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.items.is_empty() {
            queue.closed = true;
        }
        queue.items.drain(..).collect()
    }

    /// Closes the queue for good and returns what was still pending.
    pub(crate) fn close_steering(&self) -> Vec<Steer> {
        let mut queue = self.steering.lock().unwrap_or_else(PoisonError::into_inner);
        queue.closed = true;
        queue.items.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steer(text: &str) -> Steer {
        Steer {
            message_id: text.into(),
            text: text.into(),
        }
    }

    #[test]
    fn closing_refuses_later_steers_but_never_drops_queued_ones() {
        let c = RunControl::new();
        c.steer(steer("a")).unwrap();
        assert_eq!(c.take_steering_or_close(), vec![steer("a")]);
        // Not closed: something was pending, so the run goes on.
        c.steer(steer("b")).unwrap();
        assert_eq!(c.take_steering_or_close(), vec![steer("b")]);
        assert_eq!(c.take_steering_or_close(), vec![]);
        assert_eq!(c.steer(steer("c")), Err(SteerRefused::Closed));
    }

    #[test]
    fn the_queue_holds_at_most_the_cap_until_the_run_takes_it() {
        let c = RunControl::new();
        for i in 0..limits::MAX_QUEUED_STEERS {
            c.steer(steer(&format!("s{i}"))).unwrap();
        }
        assert_eq!(
            c.steer(steer("one too many")),
            Err(SteerRefused::QueueFull {
                max: limits::MAX_QUEUED_STEERS
            })
        );
        assert_eq!(c.take_steering().len(), limits::MAX_QUEUED_STEERS);
        c.steer(steer("room again")).unwrap();
        assert_eq!(c.take_steering(), vec![steer("room again")]);
    }

    #[test]
    fn a_nested_control_shares_the_interrupt_but_not_the_steering() {
        let parent = RunControl::new();
        let nested = parent.nested();
        parent.steer(steer("for the parent")).unwrap();
        assert_eq!(nested.take_steering(), vec![]);
        assert!(!nested.is_interrupted());
        parent.interrupt(Some("user".into()));
        assert!(nested.is_interrupted());
        assert_eq!(nested.interrupt_reason().as_deref(), Some("user"));
        assert_eq!(parent.take_steering(), vec![steer("for the parent")]);
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
