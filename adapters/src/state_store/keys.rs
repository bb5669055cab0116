//! Object keys of the state store. Session ids come from callers, so each one is checked
//! before it becomes a key segment: a traversal like `../x` or `a/b` must never name a key
//! outside `sessions/{id}/`.

use ports::StateStoreError;

/// Longest accepted id; longer names fail on common filesystems (255-byte name limit), and
/// that is the caller's mistake, not an outage.
const MAX_ID_LEN: usize = 255;

/// Key of `state.json` for a session.
pub(super) fn state(session_id: &str) -> Result<String, StateStoreError> {
    Ok(format!("{SESSIONS}{}/state.json", checked(session_id)?))
}

/// Key of `display_messages.json` for a session.
pub(super) fn display_messages(session_id: &str) -> Result<String, StateStoreError> {
    Ok(format!(
        "{SESSIONS}{}/display_messages.json",
        checked(session_id)?
    ))
}

/// The prefix of every object of a session (a directory on the filesystem).
pub(super) fn session_dir(session_id: &str) -> Result<String, StateStoreError> {
    Ok(format!("{SESSIONS}{}/", checked(session_id)?))
}

/// The prefix of every session's objects.
pub(super) const SESSIONS: &str = "sessions/";

/// The prefix of every history segment.
pub(super) const SEGMENTS: &str = "history/";

/// Key of a history segment: under a two-character fan-out directory, so no directory of
/// a filesystem store holds them all. Names come from stored documents, so they are
/// checked like ids.
pub(super) fn segment(sha256: &str) -> Result<String, StateStoreError> {
    if !super::segments::is_sha256(sha256) {
        return Err(StateStoreError::Corrupt(
            format!("not a segment name: {sha256:?}").into(),
        ));
    }
    Ok(format!("{SEGMENTS}{}/{sha256}.json", &sha256[..2]))
}

/// The segment a listed key names, if it is one.
pub(super) fn segment_of(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?.strip_suffix(".json")?;
    (key.starts_with(SEGMENTS) && super::segments::is_sha256(name)).then_some(name)
}

/// Whether a listed key is a session's `state.json`.
pub(super) fn is_state(key: &str) -> bool {
    key.starts_with(SESSIONS) && key.ends_with("/state.json")
}

/// A fresh probe key per health check, so replicas checking at once never delete each
/// other's probe between its write and read-back.
pub(super) fn health_probe() -> String {
    format!("health/probe-{}", uuid::Uuid::new_v4().simple())
}

/// An allowlist rather than a denylist: only ASCII alphanumerics, `-` and `_` are safe as
/// a path segment on every backend, so dots, separators and anything exotic are refused.
fn checked(session_id: &str) -> Result<&str, StateStoreError> {
    let safe = !session_id.is_empty()
        && session_id.len() <= MAX_ID_LEN
        && session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if safe {
        Ok(session_id)
    } else {
        Err(StateStoreError::InvalidKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_plain_names() {
        assert_eq!(
            state("0192b1c2-7d3e-7abc-8def-0123456789ab").unwrap(),
            "sessions/0192b1c2-7d3e-7abc-8def-0123456789ab/state.json"
        );
        assert_eq!(
            display_messages("run_7").unwrap(),
            "sessions/run_7/display_messages.json"
        );
    }

    #[test]
    fn segment_keys_fan_out_and_refuse_foreign_names() {
        let sha = "ab".repeat(32);
        let key = segment(&sha).unwrap();
        assert_eq!(key, format!("history/ab/{sha}.json"));
        assert_eq!(segment_of(&key), Some(sha.as_str()));
        assert_eq!(segment_of("history/ab/notes.json"), None);
        assert_eq!(segment_of(&format!("sessions/x/{sha}.json")), None);
        for bad in ["../../sessions/x/state", "", "AB"] {
            assert!(
                matches!(segment(bad), Err(StateStoreError::Corrupt(_))),
                "{bad}"
            );
        }
        assert!(is_state("sessions/s1/state.json"));
        assert!(!is_state("sessions/s1/display_messages.json"));
    }

    #[test]
    fn refuses_unsafe_ids() {
        let long = "a".repeat(MAX_ID_LEN + 1);
        for id in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "a.b",
            "a b",
            "é",
            "a\0b",
            long.as_str(),
        ] {
            assert!(
                matches!(state(id), Err(StateStoreError::InvalidKey)),
                "{id:?} was accepted"
            );
        }
    }
}
