//! Timestamps with the precision every backend can keep.

use chrono::{DateTime, SubsecRound, Utc};

/// A UTC timestamp.
pub type Timestamp = DateTime<Utc>;

/// The current time truncated to microseconds.
///
/// PostgreSQL keeps microseconds and our SQL adapters store epoch microseconds, so a value
/// made here survives every round trip unchanged and orders identically on every backend.
pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// Converts epoch microseconds back into a timestamp (out-of-range values clamp to the epoch).
pub fn from_micros(micros: i64) -> Timestamp {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}
