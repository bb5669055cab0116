//! The identity of a chat as OpenAI-style clients send it: every request carries the whole
//! chat, so the user/assistant texts before the new message name the session to go on
//! from. A chain is hashed, not stored.

use sha2::{Digest, Sha256};

/// The user/assistant texts of a chat, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    hasher: Sha256,
    len: usize,
}

impl Chain {
    /// Adds a user text.
    pub fn user(&mut self, text: &str) {
        self.add(b'u', text);
    }

    /// Adds an assistant text.
    pub fn assistant(&mut self, text: &str) {
        self.add(b'a', text);
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each entry is its role, its length and its text, so no two chains hash alike by
    /// moving text between entries.
    fn add(&mut self, role: u8, text: &str) {
        self.hasher.update([role]);
        self.hasher.update((text.len() as u64).to_le_bytes());
        self.hasher.update(text.as_bytes());
        self.len += 1;
    }

    /// The chain's hash, hex.
    pub fn hash(&self) -> String {
        let digest = self.hasher.clone().finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(entries: &[(bool, &str)]) -> Chain {
        let mut chain = Chain::default();
        for (user, text) in entries {
            if *user {
                chain.user(text);
            } else {
                chain.assistant(text);
            }
        }
        chain
    }

    #[test]
    fn equal_chats_hash_alike_and_any_change_differs() {
        let base = chain(&[(true, "hi"), (false, "hello")]).hash();
        assert_eq!(base, chain(&[(true, "hi"), (false, "hello")]).hash());
        assert_eq!(base.len(), 64);
        for other in [
            chain(&[(true, "hi"), (false, "hello!")]),
            chain(&[(false, "hi"), (false, "hello")]),
            chain(&[(true, "hih"), (false, "ello")]),
            chain(&[(true, "hi")]),
        ] {
            assert_ne!(base, other.hash());
        }
        assert!(Chain::default().is_empty());
    }
}
