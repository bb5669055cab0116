//! The steering queue of one run (spec 05): messages wait here for the run's next step
//! boundary. It closes atomically when the run decides to finish, so a steer either
//! reaches the model or is refused to its sender; it is never silently dropped.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use ports::UserPart;

use crate::core::limits;

/// A steering message waiting for the next step boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct Steer {
    pub message_id: String,
    /// What the model reads: the caller's parts, attachments noted and images inline.
    pub parts: Vec<UserPart>,
    /// What the conversation shows: the caller's words and one line per attachment.
    pub text: String,
}

impl Steer {
    /// The bytes the steer holds while it waits, counted against
    /// [`limits::MAX_QUEUED_STEER_BYTES`].
    pub fn size(&self) -> usize {
        let parts: usize = self
            .parts
            .iter()
            .map(|part| match part {
                UserPart::Text { text } => text.len(),
                UserPart::Image { url, data, .. } => {
                    url.as_ref().map_or(0, String::len) + data.as_ref().map_or(0, String::len)
                }
            })
            .sum();
        parts + self.text.len() + self.message_id.len()
    }
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
    /// The waiting steers already hold [`limits::MAX_QUEUED_STEER_BYTES`] with this one.
    #[error(
        "the steering messages waiting for the run's next step would hold more than {max} bytes; retry once it took them"
    )]
    QueueBytes { max: usize },
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Steer>,
    /// The sum of the waiting steers' sizes.
    bytes: usize,
    closed: bool,
}

impl Queue {
    /// Whether a steer of `size` bytes may join: the queue is open, below
    /// [`limits::MAX_QUEUED_STEERS`] and, unless empty, below
    /// [`limits::MAX_QUEUED_STEER_BYTES`] with it.
    fn admits(&self, size: usize) -> Result<(), SteerRefused> {
        if self.closed {
            return Err(SteerRefused::Closed);
        }
        if self.items.len() >= limits::MAX_QUEUED_STEERS {
            return Err(SteerRefused::QueueFull {
                max: limits::MAX_QUEUED_STEERS,
            });
        }
        if !self.items.is_empty() && self.bytes + size > limits::MAX_QUEUED_STEER_BYTES {
            return Err(SteerRefused::QueueBytes {
                max: limits::MAX_QUEUED_STEER_BYTES,
            });
        }
        Ok(())
    }

    fn drain(&mut self) -> Vec<Steer> {
        self.bytes = 0;
        self.items.drain(..).collect()
    }
}

/// The steers waiting for a run's next step; at most [`limits::MAX_QUEUED_STEERS`]
/// messages and [`limits::MAX_QUEUED_STEER_BYTES`] at once, so a flood of steers (images
/// included) cannot grow the run's memory (and its next step) without bound. A steer alone
/// in the queue is always taken: the request body cap already bounds it.
#[derive(Debug, Default)]
pub struct SteeringQueue {
    queue: Mutex<Queue>,
}

impl SteeringQueue {
    /// Each critical section leaves the queue whole, so a poisoned lock is still valid.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a steer of about `size` bytes would be taken now: asked before its
    /// attachments are saved, so a full queue costs no disk.
    ///
    /// # Errors
    /// As [`Self::push`].
    pub fn room_for(&self, size: usize) -> Result<(), SteerRefused> {
        self.lock().admits(size)
    }

    /// Queues a steering message for the next step boundary.
    ///
    /// # Errors
    /// [`SteerRefused::Closed`] once the run has decided to finish,
    /// [`SteerRefused::QueueFull`] or [`SteerRefused::QueueBytes`] while the queue is full.
    pub fn push(&self, steer: Steer) -> Result<(), SteerRefused> {
        let size = steer.size();
        let mut queue = self.lock();
        queue.admits(size)?;
        queue.bytes += size;
        queue.items.push_back(steer);
        Ok(())
    }

    /// Takes the queued messages.
    pub(crate) fn take(&self) -> Vec<Steer> {
        self.lock().drain()
    }

    /// Takes the queued messages; when there are none, closes the queue in the same step,
    /// so nothing can arrive between "nothing pending" and "finished".
    pub(crate) fn take_or_close(&self) -> Vec<Steer> {
        let mut queue = self.lock();
        if queue.items.is_empty() {
            queue.closed = true;
        }
        queue.drain()
    }

    /// Closes the queue for good and returns what was still pending.
    pub(crate) fn close(&self) -> Vec<Steer> {
        let mut queue = self.lock();
        queue.closed = true;
        queue.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steer(text: &str) -> Steer {
        Steer {
            message_id: text.into(),
            parts: vec![UserPart::Text { text: text.into() }],
            text: text.into(),
        }
    }

    fn image_steer(id: &str, bytes: usize) -> Steer {
        Steer {
            message_id: id.into(),
            parts: vec![UserPart::Image {
                url: None,
                data: Some("A".repeat(bytes)),
                mime_type: Some("image/png".into()),
            }],
            text: "[attachment: a.png]".into(),
        }
    }

    #[test]
    fn queued_steers_hold_at_most_the_byte_cap_but_one_alone_always_fits() {
        let c = SteeringQueue::default();
        let big = limits::MAX_QUEUED_STEER_BYTES / 2;
        c.push(image_steer("a", big)).unwrap();
        assert_eq!(
            c.push(image_steer("b", big)),
            Err(SteerRefused::QueueBytes {
                max: limits::MAX_QUEUED_STEER_BYTES
            })
        );
        c.push(steer("small words still fit")).unwrap();
        assert_eq!(c.take().len(), 2);
        // Taking the queue frees its bytes; a lone oversize steer is the body cap's matter.
        c.push(image_steer("c", limits::MAX_QUEUED_STEER_BYTES + 1))
            .unwrap();
        assert_eq!(c.take().len(), 1);
    }

    #[test]
    fn room_is_asked_before_a_steer_exists_by_the_same_rules() {
        let c = SteeringQueue::default();
        assert_eq!(c.room_for(limits::MAX_QUEUED_STEER_BYTES * 2), Ok(()));
        c.push(steer("a")).unwrap();
        assert_eq!(
            c.room_for(limits::MAX_QUEUED_STEER_BYTES),
            Err(SteerRefused::QueueBytes {
                max: limits::MAX_QUEUED_STEER_BYTES
            })
        );
        assert_eq!(c.room_for(10), Ok(()));
        c.close();
        assert_eq!(c.room_for(10), Err(SteerRefused::Closed));
    }

    #[test]
    fn closing_refuses_later_steers_but_never_drops_queued_ones() {
        let c = SteeringQueue::default();
        c.push(steer("a")).unwrap();
        assert_eq!(c.take_or_close(), vec![steer("a")]);
        // Not closed: something was pending, so the run goes on.
        c.push(steer("b")).unwrap();
        assert_eq!(c.take_or_close(), vec![steer("b")]);
        assert_eq!(c.take_or_close(), vec![]);
        assert_eq!(c.push(steer("c")), Err(SteerRefused::Closed));
    }

    #[test]
    fn the_queue_holds_at_most_the_cap_until_the_run_takes_it() {
        let c = SteeringQueue::default();
        for i in 0..limits::MAX_QUEUED_STEERS {
            c.push(steer(&format!("s{i}"))).unwrap();
        }
        assert_eq!(
            c.push(steer("one too many")),
            Err(SteerRefused::QueueFull {
                max: limits::MAX_QUEUED_STEERS
            })
        );
        assert_eq!(c.take().len(), limits::MAX_QUEUED_STEERS);
        c.push(steer("room again")).unwrap();
        assert_eq!(c.take(), vec![steer("room again")]);
    }
}
