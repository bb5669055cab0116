//! Defence in depth (spec 02): tool output is scrubbed of the service's secret values
//! before the model or any event sees it. The boundary (no secret in a command's
//! environment, `/proc` closed, the service's files out of reach) is what keeps secrets
//! in; this is the last line for a secret that got into a file the agent may read.

use std::sync::Arc;

/// What replaces a secret value.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not scrubbed: they would match ordinary text.
pub const MIN_SECRET_LEN: usize = 8;

/// The secret values to scrub; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    secrets: Arc<[String]>,
}

impl Redactor {
    /// Keeps the values of at least [`MIN_SECRET_LEN`] characters.
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = values
            .into_iter()
            .filter(|v| v.chars().count() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self {
            secrets: secrets.into(),
        }
    }

    /// Whether `value` is one of the service's secrets (or holds one): such a value is
    /// never handed to anything the agent can reach.
    pub fn holds(&self, value: &str) -> bool {
        self.secrets.iter().any(|s| value.contains(s.as_str()))
    }

    /// `text` with every secret value replaced by [`REDACTED`]; untouched (no copy) when it
    /// holds none.
    pub fn redact(&self, text: String) -> String {
        let mut text = text;
        for secret in self.secrets.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_and_short_values_ignored() {
        let r = Redactor::new([
            "sk-live-0123456789".to_owned(),
            "short".to_owned(),
            "sk-live-0123456789-longer".to_owned(),
        ]);
        assert_eq!(
            r.redact("key=sk-live-0123456789-longer and sk-live-0123456789; short".into()),
            "key=[redacted] and [redacted]; short"
        );
        assert_eq!(r.redact("nothing here".into()), "nothing here");
        assert_eq!(Redactor::default().redact("x".into()), "x");
    }
}
