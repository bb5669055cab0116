//! Event bus adapters: in-process and Redis Streams.
//!
//! Both keep the same live buffer: per-stream ids 1, 2, 3 … with no gaps, at most `cap` newest
//! events, and a TTL started by the terminal event. The in-process bus serves a single node
//! and tests; the Redis bus lets every replica tail every run.

use std::time::Duration;

pub mod in_process;
pub mod redis;

pub use in_process::InProcessBus;
pub use redis::RedisBus;

/// Longest single wait a read honours; longer waits are cut to this so deadline arithmetic
/// cannot overflow. Callers loop anyway, so a day loses nothing.
const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// Limits shared by both adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusSettings {
    /// Newest events kept per stream; older ones are dropped. Values below 1 count as 1,
    /// because an empty stream could not remember its last id.
    pub cap: usize,
    /// How long a stream lives after its terminal event: long enough for late subscribers
    /// to read the end of a run, short enough that finished runs do not pile up.
    pub ttl: Duration,
}

impl Default for BusSettings {
    fn default() -> Self {
        Self {
            cap: 10_000,
            ttl: Duration::from_secs(5 * 60),
        }
    }
}
