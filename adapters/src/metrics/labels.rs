//! Label values that callers or models choose (a tool name a model made up, a model name
//! from a run's override) must not grow the series without bound: each labelled family
//! keeps at most [`MAX_VALUES`] distinct values, each cut to [`MAX_CHARS`]; later new values
//! are counted under [`OTHER`].

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

/// Distinct values kept per label.
pub const MAX_VALUES: usize = 256;
/// Longest value kept, in characters.
pub const MAX_CHARS: usize = 128;
/// What values beyond [`MAX_VALUES`] are counted as.
pub const OTHER: &str = "(other)";

/// The values seen for one label.
#[derive(Debug, Default)]
pub struct BoundedLabel(Mutex<HashSet<String>>);

impl BoundedLabel {
    /// `value` as the series' label: itself (cut to [`MAX_CHARS`]) while there is room or
    /// it was seen before, else [`OTHER`].
    pub fn value(&self, value: &str) -> String {
        let cut: String = value.chars().take(MAX_CHARS).collect();
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(&cut) {
            return cut;
        }
        if seen.len() >= MAX_VALUES {
            return OTHER.to_owned();
        }
        seen.insert(cut.clone());
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_beyond_the_cap_are_counted_as_other() {
        let label = BoundedLabel::default();
        for n in 0..1000 {
            let got = label.value(&format!("tool_{n}"));
            if n < MAX_VALUES {
                assert_eq!(got, format!("tool_{n}"));
            } else {
                assert_eq!(got, OTHER);
            }
        }
        assert_eq!(
            label.value("tool_7"),
            "tool_7",
            "a known value keeps its series"
        );
        assert_eq!(
            label.value(&"x".repeat(10_000)).chars().count(),
            OTHER.len()
        );
        let fresh = BoundedLabel::default();
        assert_eq!(fresh.value(&"y".repeat(10_000)).chars().count(), MAX_CHARS);
    }
}
