//! Typed ids: a session id, a conversation id and a preset id are all strings on the wire
//! and in SQL, but never interchangeable in code. Each is a newtype that reads as a `str`
//! (`Deref`) and is built only by naming its type.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// A session: one run's immutable snapshot (a UUIDv7, so ids sort by creation).
    SessionId
);

id_type!(
    /// A conversation: named after its root session.
    ConversationId
);

id_type!(
    /// A preset: a slug chosen by whoever created it.
    PresetId
);

impl SessionId {
    /// A new id, later than every id generated before it by this process.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

impl ConversationId {
    /// The id of the conversation whose root is `session` (a new conversation or a fork).
    pub fn rooted_at(session: &SessionId) -> Self {
        Self(session.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_strings_on_the_wire() {
        let id = SessionId::from("s1");
        assert_eq!(serde_json::to_value(&id).unwrap(), serde_json::json!("s1"));
        let back: SessionId = serde_json::from_str("\"s1\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(id, "s1");
        assert_eq!(ConversationId::rooted_at(&id).as_str(), "s1");
    }

    #[test]
    fn generated_session_ids_sort_by_creation() {
        let (a, b) = (SessionId::generate(), SessionId::generate());
        assert!(a < b, "{a} then {b}");
    }
}
