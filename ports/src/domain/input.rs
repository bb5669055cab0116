//! What a caller sends as the user turn of a run (spec 03, input parts).

use serde::{Deserialize, Serialize};

/// One part of the user's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputPart {
    /// Plain text.
    Text { text: String },
    /// A remote resource: downloaded into the environment, or passed as an image URL.
    Url { url: String },
    /// A path inside the agent's environment.
    File { path: String },
    /// Inline data written to a temporary file in the environment.
    Binary {
        /// Base64 (standard alphabet).
        data: String,
        mime_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

impl InputPart {
    /// The `type` spelling, for messages about a part.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Url { .. } => "url",
            Self::File { .. } => "file",
            Self::Binary { .. } => "binary",
        }
    }
}
