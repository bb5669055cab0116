//! Conversation metadata (a flat string map an IM gateway or a script sets and filters by):
//! the rules it follows, so a key can always be named in `conversations/list?metadata.<key>=`
//! and a hostile caller cannot grow a conversation row without bound.

use ports::Metadata;

use super::limits::{MAX_METADATA_KEY_CHARS, MAX_METADATA_KEYS, MAX_METADATA_VALUE_CHARS};
use super::preset_validation::FieldError;

/// Every broken rule of `metadata`, reported under `field` (`metadata`, …).
pub fn check(field: &str, metadata: &Metadata) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if metadata.len() > MAX_METADATA_KEYS {
        errors.push(FieldError {
            field: field.to_owned(),
            message: format!("at most {MAX_METADATA_KEYS} keys"),
        });
        return errors;
    }
    for (key, value) in metadata {
        if !is_key(key) {
            errors.push(FieldError {
                field: format!("{field}.{}", key.chars().take(MAX_METADATA_KEY_CHARS).collect::<String>()),
                message: format!(
                    "keys are 1-{MAX_METADATA_KEY_CHARS} characters of a-z, A-Z, 0-9, '_', '-', '.' or ':'"
                ),
            });
        } else if value.chars().count() > MAX_METADATA_VALUE_CHARS {
            errors.push(FieldError {
                field: format!("{field}.{key}"),
                message: format!("at most {MAX_METADATA_VALUE_CHARS} characters"),
            });
        }
    }
    errors
}

/// Whether `key` is a valid metadata key.
pub fn is_key(key: &str) -> bool {
    (1..=MAX_METADATA_KEY_CHARS).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// `current` with every pair of `update` set (a run's `metadata` adds to the
/// conversation's); `None` when nothing changes.
pub fn merged(current: &Metadata, update: &Metadata) -> Option<Metadata> {
    let changes = update.iter().any(|(k, v)| current.get(k) != Some(v));
    changes.then(|| {
        let mut merged = current.clone();
        merged.extend(update.iter().map(|(k, v)| (k.clone(), v.clone())));
        merged
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> Metadata {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn keys_values_and_counts_are_bounded() {
        assert!(check("metadata", &map(&[("channel", "c-1"), ("im.user:id", "u")])).is_empty());
        let bad = check(
            "metadata",
            &map(&[("", "x"), ("a b", "x"), ("ok", &"v".repeat(513))]),
        );
        let fields: Vec<&str> = bad.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["metadata.", "metadata.a b", "metadata.ok"]);
        let many: Metadata = (0..33).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert_eq!(check("metadata", &many).len(), 1);
        assert!(!is_key(&"k".repeat(65)));
    }

    #[test]
    fn merging_adds_and_replaces_and_says_when_nothing_changed() {
        let current = map(&[("a", "1"), ("b", "2")]);
        assert_eq!(merged(&current, &map(&[("a", "1")])), None);
        assert_eq!(
            merged(&current, &map(&[("b", "3"), ("c", "4")])),
            Some(map(&[("a", "1"), ("b", "3"), ("c", "4")]))
        );
    }
}
