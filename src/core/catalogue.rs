//! The toolsets and their tool names (spec 03). Preset validation checks names against this
//! list; the tools themselves are registered by the agent loop.

/// The toolset of the `shell` tool.
pub const SHELL_TOOLSET: &str = "shell";

/// Every toolset and the tools it contributes, in the seed SDK's naming.
pub const TOOLSETS: &[(&str, &[&str])] = &[
    (
        "core",
        &["view", "edit", "multi_edit", "write", "ls", "glob", "grep"],
    ),
    ("filesystem", &["mkdir", "move", "copy"]),
    (SHELL_TOOLSET, &["shell"]),
    ("web", &["fetch", "download", "search", "scrape"]),
    (
        "task",
        &["task_create", "task_update", "task_list", "task_get"],
    ),
    ("context", &["thinking", "handoff"]),
    ("subagent", &["delegate", "async_delegate"]),
    ("media", &["load_media_url", "read_video"]),
    ("document", &["pdf_convert", "office_to_markdown"]),
];

/// Toolsets the service names but whose tools do not exist yet: a preset enabling one would
/// get nothing, so it is refused instead of accepted empty.
pub const UNAVAILABLE_TOOLSETS: &[&str] = &["media", "document"];

/// The tools of a toolset, or `None` for an unknown name.
pub fn tools_of(toolset: &str) -> Option<&'static [&'static str]> {
    TOOLSETS
        .iter()
        .find(|(name, _)| *name == toolset)
        .map(|(_, tools)| *tools)
}

/// Comma-separated toolset names, for error messages.
pub fn toolset_names() -> String {
    TOOLSETS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
