//! Caps on everything a request can make the service hold or compute (spec 02, security
//! boundary: "every input a request can grow has a cap"), in one place so they are easy to
//! find, document and tune. Caps a test or an operator needs to change live in
//! `execution::Settings` (from the configuration) instead; these are fixed.
//!
//! Each cap is generous for honest use and small enough that the service stays within its
//! memory budget when many requests hit it at once.

/// Longest `system_prompt` template (preset or `config_override`), in characters: a long
/// prompt, yet small enough that parsing it is cheap.
pub const MAX_TEMPLATE_CHARS: usize = 128 * 1024;

/// Longest rendered system prompt, in bytes (about 64k tokens). Rendering stops as soon as
/// the output passes it.
pub const MAX_PROMPT_BYTES: usize = 256 * 1024;

/// minijinja fuel for one render: about one unit per instruction and per 64 bytes of data
/// the template creates, so it bounds both the time (well under a second) and the memory
/// (a few MB) of a render. A prompt with loops over its tools uses a few thousand.
pub const TEMPLATE_FUEL: u64 = 100_000;

/// Renders running at once, each on a blocking thread: hostile templates can occupy at
/// most this many of tokio's blocking threads, the rest wait for a slot.
pub const TEMPLATE_RENDER_SLOTS: usize = 4;

/// Preset and conversation text, in characters (as the schema's `maxLength` counts).
/// A preset's or conversation's display name.
pub const MAX_NAME_CHARS: usize = 200;
/// A conversation's title.
pub const MAX_TITLE_CHARS: usize = 500;
/// A preset's description, a subagent's description (both end up in prompts or lists).
pub const MAX_DESCRIPTION_CHARS: usize = 4_000;
/// A subagent's instruction, added to the caller's system prompt.
pub const MAX_INSTRUCTION_CHARS: usize = 16_000;
/// Identifiers: ids, model, toolset, tool and variable names, a container id.
pub const MAX_IDENT_CHARS: usize = 128;
/// A path (`default_path`, an allowed path, the container workdir): PATH_MAX.
pub const MAX_PATH_CHARS: usize = 4_096;
/// Entries of any list in a preset (toolsets, excluded tools, paths, subagents …).
pub const MAX_LIST_ITEMS: usize = 64;

/// Longest client `message_id` of a steer, in bytes (the run remembers every id it queued).
pub const MAX_STEER_ID_BYTES: usize = 256;

/// Steering messages queued and not yet taken by the run, per session; more are refused
/// with 429 `too_many_steers` until the run reaches its next step boundary.
pub const MAX_QUEUED_STEERS: usize = 32;

/// Bytes the steering messages queued for one session may hold together (their text and
/// inline images); more are refused with 429 `too_many_steers` like [`MAX_QUEUED_STEERS`].
pub const MAX_QUEUED_STEER_BYTES: usize = 16 * 1024 * 1024;

/// Bounds on the file tools; `max_file_bytes` comes from `MAX_FILE_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// The largest file `edit` and `multi_edit` read whole, and the largest contents
    /// `write`, `edit` and `multi_edit` write.
    pub max_file_bytes: u64,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Default of `MAX_FILE_BYTES`: 10 MiB, far above any source file, small enough that a
/// few concurrent edits (file, result and the model's arguments) stay within budget.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Model requests one run may make when its preset sets no `limits.max_model_requests`: a
/// model stuck in a loop stops here instead of spending without end.
pub const DEFAULT_MAX_MODEL_REQUESTS: u64 = 50;

/// The service's caps on a run whose preset sets none of its own.
pub fn default_run_limits() -> ports::RunLimits {
    ports::RunLimits {
        max_model_requests: Some(DEFAULT_MAX_MODEL_REQUESTS),
        ..ports::RunLimits::default()
    }
}

/// Keys of a conversation's metadata.
pub const MAX_METADATA_KEYS: usize = 32;
/// A metadata key, in characters (a-z, A-Z, 0-9, `_`, `-`, `.`, `:`).
pub const MAX_METADATA_KEY_CHARS: usize = 64;
/// A metadata value, in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 512;

/// A title set from the first user text is that text cut at this many characters.
pub const FALLBACK_TITLE_CHARS: usize = 60;
