//! Running one command for an agent: local process or `docker exec`.

use std::time::Duration;

use async_trait::async_trait;

use crate::BoxError;

/// One command to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellRequest {
    pub command: String,
    /// Working directory (host path, or container path in docker mode).
    pub cwd: String,
    /// The complete environment of the command: nothing is inherited.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Bytes kept of stdout and of stderr each; the rest is dropped and flagged.
    pub output_cap: usize,
}

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShellOutput {
    /// `None` when killed (timeout) or ended by a signal.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub timed_out: bool,
}

/// Shell failures that are not the command's own exit status.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The command could not be started (missing binary, missing container, bad cwd).
    #[error("could not start command: {0}")]
    Spawn(String),
    #[error("shell error: {0}")]
    Other(BoxError),
}

/// Runs commands.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Shell: Send + Sync {
    /// Runs the command to completion or timeout. On timeout the whole process group MUST
    /// be killed. Dropping the returned future (cancellation) MUST kill it as well.
    async fn run(&self, request: ShellRequest) -> Result<ShellOutput, ShellError>;
}
