//! The files an agent may touch: its working directory plus the allowed paths (spec 02,
//! security boundary). Tools reach files only through this port, so the same tools work in
//! local and docker mode and no tool can step outside the policy.
//!
//! Paths are given as the model wrote them: relative to the working directory, or absolute.
//! Every method resolves `..` and symlinks before checking the policy, and MUST use the
//! checked path without a check-then-use race: a directory swapped for a symlink after the
//! check makes the operation fail, it never reaches outside the policy.

use async_trait::async_trait;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
    /// Size in bytes (0 for directories).
    pub size: u64,
}

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    pub is_dir: bool,
    pub size: u64,
}

/// A bounded list of paths (relative to the working directory when inside it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathList {
    pub paths: Vec<String>,
    /// More paths matched than were returned.
    pub truncated: bool,
}

/// A regex search over files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrepRequest {
    /// Rust regex syntax.
    pub pattern: String,
    /// File or directory to search (default: the working directory).
    pub path: String,
    /// Optional glob restricting the searched files, e.g. `*.rs`.
    pub include: Option<String>,
    pub case_insensitive: bool,
    /// Matching lines returned at most.
    pub max_matches: usize,
}

/// One matching line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrepMatch {
    pub path: String,
    /// 1-based.
    pub line_number: u64,
    pub line: String,
}

/// The result of a search.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GrepOutput {
    pub matches: Vec<GrepMatch>,
    /// More lines matched than were returned.
    pub truncated: bool,
}

/// Which lines [`Workspace::read_lines`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineWindow {
    /// First line, 1-based (0 counts as 1).
    pub offset: u64,
    /// Lines returned at most.
    pub limit: usize,
    /// Bytes of line text returned at most: the read stops after the line that reaches
    /// it (at least one line is returned when the window has one).
    pub max_bytes: usize,
    /// Bytes kept of one line; the rest of a longer line is skipped, not held.
    pub max_line_bytes: usize,
    /// Bytes read from the file at most, skipped lines included: the read stops there
    /// even mid-line, so an offset deep into a huge file or a file without line endings
    /// costs bounded time (`LineSlice::scan_capped`).
    pub max_scan_bytes: u64,
}

/// One line of a text file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLine {
    /// The line without its ending (`\n` or `\r\n`), invalid UTF-8 replaced.
    pub text: String,
    /// The line was longer than `max_line_bytes` and is cut.
    pub cut: bool,
}

/// A window of a text file's lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineSlice {
    pub lines: Vec<TextLine>,
    /// More lines follow the window.
    pub more: bool,
    /// How many lines the file has, when the read reached its end.
    pub total: Option<u64>,
    /// A NUL byte was seen in what was read (its first 8 KiB are always looked at); the
    /// read stops there.
    pub binary: bool,
    /// The read stopped at `max_scan_bytes` before the window was full.
    pub scan_capped: bool,
}

/// Workspace failures, worded for the model: each becomes a tool error it can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    /// The path resolves outside the working directory and the allowed paths.
    #[error("access denied: {0} is outside the allowed paths")]
    OutsideAllowed(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("not a directory: {0}")]
    NotADirectory(String),
    #[error("is a directory: {0}")]
    IsADirectory(String),
    /// A glob or regex that does not parse.
    #[error("invalid pattern: {0}")]
    InvalidPattern(String),
    /// A whole-file read found more than the caller's cap.
    #[error("too large: {path} is larger than {max} bytes")]
    TooLarge { path: String, max: u64 },
    #[error("I/O error: {0}")]
    Io(String),
}

/// The agent's files.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Workspace: Send + Sync {
    /// The working directory as the model should see it.
    fn working_dir(&self) -> String;

    /// Reads a whole regular file of at most `max_bytes`. It MUST NOT hold more than
    /// `max_bytes` (plus a read buffer) of it in memory, whatever the file's size: a file
    /// over the cap, or one that grows past it while being read, is `TooLarge`.
    ///
    /// # Errors
    /// `TooLarge`, `NotFound`, `IsADirectory`, `OutsideAllowed`, `Io` (also for FIFOs and
    /// devices, which are never opened).
    async fn read_capped(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>, WorkspaceError>;

    /// Lines `offset ..` of a regular file, read as a stream: it MUST stop once the window
    /// is full (`limit` lines or `max_bytes` of text), at a NUL byte, or after
    /// `max_scan_bytes`; skip lines before `offset` without holding them, and hold at most
    /// `max_line_bytes` of any line. `more` says whether
    /// lines follow; `total` is known only when the read reached the end.
    ///
    /// # Errors
    /// As [`Self::read_capped`], without `TooLarge`.
    async fn read_lines(&self, path: &str, window: LineWindow)
    -> Result<LineSlice, WorkspaceError>;

    /// Replaces (or creates) a file, creating missing parent directories. The write MUST be
    /// atomic: a reader sees the old or the new contents, never a mix.
    async fn write(&self, path: &str, contents: Vec<u8>) -> Result<(), WorkspaceError>;

    /// What the path is. `NotFound` when it does not exist.
    async fn stat(&self, path: &str) -> Result<FileInfo, WorkspaceError>;

    /// Entries of a directory, sorted by name.
    async fn list(&self, path: &str) -> Result<Vec<DirEntry>, WorkspaceError>;

    /// Files under `base` matching a glob, honouring `.gitignore`, sorted, at most `limit`.
    async fn glob(
        &self,
        pattern: &str,
        base: &str,
        limit: usize,
    ) -> Result<PathList, WorkspaceError>;

    /// Lines matching a regex, honouring `.gitignore`, binary files skipped.
    async fn grep(&self, request: GrepRequest) -> Result<GrepOutput, WorkspaceError>;

    /// Creates a directory and its missing parents; an existing directory is fine.
    async fn create_dir(&self, path: &str) -> Result<(), WorkspaceError>;

    /// Moves a file or directory. `AlreadyExists` when the target exists.
    async fn rename(&self, from: &str, to: &str) -> Result<(), WorkspaceError>;

    /// Removes a file, or a directory with everything in it. A symlink is removed as
    /// itself, never followed; the working directory and allowed paths themselves are
    /// refused.
    async fn remove(&self, path: &str) -> Result<(), WorkspaceError>;

    /// Copies a file, or a directory recursively. `AlreadyExists` when the target exists.
    async fn copy(&self, from: &str, to: &str) -> Result<(), WorkspaceError>;

    /// Checks that `path` is an allowed directory and returns it as the shell must see it
    /// (a host path in local mode, the matching container path in docker mode).
    async fn shell_dir(&self, path: &str) -> Result<String, WorkspaceError>;
}
