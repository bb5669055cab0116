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
    #[error("I/O error: {0}")]
    Io(String),
}

/// The agent's files.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Workspace: Send + Sync {
    /// The working directory as the model should see it.
    fn working_dir(&self) -> String;

    /// Reads a whole file.
    ///
    /// # Errors
    /// `NotFound`, `IsADirectory`, `OutsideAllowed`, `Io`.
    async fn read(&self, path: &str) -> Result<Vec<u8>, WorkspaceError>;

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

    /// Copies a file, or a directory recursively. `AlreadyExists` when the target exists.
    async fn copy(&self, from: &str, to: &str) -> Result<(), WorkspaceError>;

    /// Checks that `path` is an allowed directory and returns it as the shell must see it
    /// (a host path in local mode, the matching container path in docker mode).
    async fn shell_dir(&self, path: &str) -> Result<String, WorkspaceError>;
}
