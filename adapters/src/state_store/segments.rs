//! History segments: a message history is stored as content-addressed segments, so a
//! continued session's snapshot shares its parent's segments instead of repeating them.
//!
//! A history is cut at fixed message indexes: whole chunks of [`LEVELS`] sizes, largest
//! first, each aligned to its size, then a tail shorter than the smallest chunk. Histories
//! only grow between snapshots (compaction aside), so the chunks of a parent's history
//! are the chunks of the child's: a snapshot writes only its tail and the chunks its new
//! messages closed. A message is stored once per level and in a few tails, so a
//! conversation's cost grows linearly with its length, and a 5,000-message history is 20
//! segments to read.

use std::ops::Range;

use ports::ModelMessage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Chunk sizes in messages, largest first; each divides the one before it.
pub(super) const LEVELS: [usize; 3] = [1024, 64, 4];

/// A segment as a snapshot names it: its content's SHA-256 and how many messages it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SegmentRef {
    pub sha256: String,
    pub messages: usize,
}

/// A segment ready to store: its name and its bytes (a JSON array of messages).
pub(super) struct Encoded {
    pub reference: SegmentRef,
    pub bytes: Vec<u8>,
}

/// The ranges a history of `len` messages is stored in, in order.
pub(super) fn cut(len: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut at = 0;
    for size in LEVELS {
        while at + size <= len {
            ranges.push(at..at + size);
            at += size;
        }
    }
    if at < len {
        ranges.push(at..len);
    }
    ranges
}

/// Encodes `messages` as one segment.
///
/// # Errors
/// When a message does not serialize (it could never be stored).
pub(super) fn encode(messages: &[ModelMessage]) -> Result<Encoded, serde_json::Error> {
    let bytes = serde_json::to_vec(messages)?;
    let digest = Sha256::digest(&bytes);
    let sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Encoded {
        reference: SegmentRef {
            sha256,
            messages: messages.len(),
        },
        bytes,
    })
}

/// True for a well-formed SHA-256 in lower-case hex, the only names a segment key takes.
pub(super) fn is_sha256(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_whole_aligned_chunks_largest_first_then_the_tail() {
        assert!(cut(0).is_empty());
        for len in [3, 4] {
            assert_eq!(cut(len).len(), 1);
            assert_eq!(cut(len)[0], 0..len);
        }
        assert_eq!(cut(70), [0..64, 64..68, 68..70]);
        let big = cut(5_000);
        assert_eq!(big.len(), 20);
        assert_eq!(big[..4], [0..1024, 1024..2048, 2048..3072, 3072..4096]);
        assert_eq!(big.last(), Some(&(4996..5000)));
    }

    #[test]
    fn a_longer_history_shares_the_chunks_of_a_shorter_ones_prefix() {
        for (short, long) in [
            (5, 9),
            (63, 70),
            (1_023, 1_024),
            (1_000, 1_100),
            (4_097, 5_000),
        ] {
            let (a, b) = (cut(short), cut(long));
            // What the longer history shares is a prefix of the shorter one's chunks…
            let shared = a.iter().take_while(|r| b.contains(r)).count();
            assert!(
                a[shared..].iter().all(|r| !b.contains(r)),
                "{short} → {long}"
            );
            // … which holds every one of its largest chunks.
            assert!(
                a[..shared].iter().filter(|r| r.len() == LEVELS[0]).count() == short / LEVELS[0]
            );
            assert_eq!(b.iter().map(ExactSizeIterator::len).sum::<usize>(), long);
        }
    }

    #[test]
    fn equal_messages_give_equal_names_and_names_are_checked() {
        let m = |t: &str| ModelMessage::User {
            parts: vec![ports::UserPart::Text { text: t.into() }],
        };
        let a = encode(&[m("x"), m("y")]).unwrap();
        let b = encode(&[m("x"), m("y")]).unwrap();
        let c = encode(&[m("x"), m("z")]).unwrap();
        assert_eq!(a.reference, b.reference);
        assert_ne!(a.reference.sha256, c.reference.sha256);
        assert_eq!(a.reference.messages, 2);
        assert!(is_sha256(&a.reference.sha256));
        for bad in ["", "../x", &"A".repeat(64), &"0".repeat(63)] {
            assert!(!is_sha256(bad), "{bad}");
        }
    }
}
