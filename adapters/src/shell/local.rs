//! Commands on the host: `bash -c` (or `sh -c` where bash is absent) in the request's
//! working directory, with exactly the request's environment, in a process group of its
//! own that is killed on timeout, on cancellation and when the command ends (so nothing it
//! started in the background outlives it).
//!
//! The service runs every command through the [`Sandbox`] helper (capabilities dropped,
//! limits, Landlock, a supervisor that kills `setsid` descendants too); a plain
//! [`LocalShell::new`] without one is for tests of the bare mechanics.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use ports::{Shell, ShellError, ShellOutput, ShellRequest};
use tokio::process::Command;

use super::capture::{self, Stopper};
use super::group::ProcessGroup;
use super::sandbox::Sandbox;

/// Runs commands as host processes.
#[derive(Debug, Clone)]
pub struct LocalShell {
    shell: PathBuf,
    confinement: Confinement,
}

/// How commands are confined.
#[derive(Debug, Clone)]
enum Confinement {
    /// Plain process group (tests of the mechanics).
    None,
    Sandboxed(Arc<Sandbox>),
    /// Every command fails with this message (the sandbox is required and unavailable).
    Refused(String),
}

impl LocalShell {
    /// Uses `bash` from the service's `PATH`, or `/bin/sh` when there is none. The lookup
    /// happens once per process, not per command or run: the command's own environment may
    /// have no `PATH` at all, and every run opens a shell.
    pub fn new() -> Self {
        static DEFAULT_SHELL: OnceLock<PathBuf> = OnceLock::new();
        let shell = DEFAULT_SHELL
            .get_or_init(|| find_on_path("bash").unwrap_or_else(|| PathBuf::from("/bin/sh")))
            .clone();
        Self {
            shell,
            confinement: Confinement::None,
        }
    }

    /// Uses the given shell binary (called as `<shell> -c <command>`).
    pub fn with_shell(shell: impl Into<PathBuf>) -> Self {
        Self {
            shell: shell.into(),
            confinement: Confinement::None,
        }
    }

    /// Runs every command through `sandbox`.
    pub fn sandboxed(mut self, sandbox: Sandbox) -> Self {
        self.confinement = Confinement::Sandboxed(Arc::new(sandbox));
        self
    }

    /// Refuses every command with `reason` (a required sandbox that cannot be had).
    pub fn refusing(mut self, reason: impl Into<String>) -> Self {
        self.confinement = Confinement::Refused(reason.into());
        self
    }

    /// The shell binary commands run with.
    pub fn shell(&self) -> &Path {
        &self.shell
    }
}

impl Default for LocalShell {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Shell for LocalShell {
    async fn run(&self, request: ShellRequest) -> Result<ShellOutput, ShellError> {
        check_cwd(&request.cwd).await?;
        match &self.confinement {
            Confinement::None => self.run_plain(request).await,
            Confinement::Sandboxed(sandbox) => sandbox.run(&self.shell, request).await,
            Confinement::Refused(reason) => Err(ShellError::Spawn(reason.clone())),
        }
    }
}

impl LocalShell {
    async fn run_plain(&self, request: ShellRequest) -> Result<ShellOutput, ShellError> {
        let mut command = command_for(&self.shell, &request);
        command
            .arg("-c")
            .arg(&request.command)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            ShellError::Spawn(format!("could not run {}: {e}", self.shell.display()))
        })?;
        // Declared after `child`, so on cancellation it is dropped first: the whole group
        // is killed, then tokio reaps the leader.
        let mut group = GroupStopper(ProcessGroup::led_by(&child));
        capture::supervise(&mut child, &mut group, request.timeout, request.output_cap)
            .await
            .map_err(|e| ShellError::Other(Box::new(e)))
    }
}

/// Local commands leave nothing behind: the group is killed when the command ends too.
struct GroupStopper(ProcessGroup);

impl Stopper for GroupStopper {
    fn finished(&mut self) {
        self.0.kill();
    }

    fn abort(&mut self) {
        self.0.kill();
    }
}

/// `program` set up for `request`: exactly its environment, its working directory, a
/// process group of its own, stdout and stderr piped. The caller adds arguments and stdin.
pub(super) fn command_for(program: &Path, request: &ShellRequest) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .envs(request.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&request.cwd)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A clear error for a bad working directory (spawn would only say "No such file").
async fn check_cwd(cwd: &str) -> Result<(), ShellError> {
    match tokio::fs::metadata(cwd).await {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(ShellError::Spawn(format!(
            "working directory {cwd} is not a directory"
        ))),
        Err(e) => Err(ShellError::Spawn(format!(
            "working directory {cwd} is not usable: {e}"
        ))),
    }
}

/// `name` in the service's own `PATH`.
pub(super) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
