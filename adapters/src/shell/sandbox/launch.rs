//! The service side of a sandboxed command: start the helper, keep its stdin (closing it
//! tells the helper to kill the command's tree), and clean up the process group and cgroup
//! whatever way the call ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ports::{ShellError, ShellOutput, ShellRequest};
use tokio::process::ChildStdin;
use tokio::sync::OnceCell;

use super::HELPER_SUBCOMMAND;
use super::cgroup::{CgroupRoot, CommandCgroup};
use super::policy::SandboxPolicy;
use crate::shell::capture::{self, Stopper};
use crate::shell::group::ProcessGroup;
use crate::shell::local::command_for;

/// How long a cancelled command's helper gets to kill its tree before its group is killed.
const HELPER_GRACE: Duration = Duration::from_secs(2);

/// How commands of one environment are confined.
#[derive(Debug)]
pub struct Sandbox {
    /// The service binary (it runs the helper subcommand).
    pub helper: PathBuf,
    /// The policy of every command; the cgroup and the temp dir are filled in per command.
    pub policy: SandboxPolicy,
    /// Where per-command cgroups go, when the machine has them.
    pub cgroups: Option<CgroupRoot>,
    /// The run's temp dir (`TMPDIR` of every command, writable), made by the first command
    /// (most runs never call the shell) and removed with the environment.
    pub temp_dir: OnceCell<tempfile::TempDir>,
}

impl Sandbox {
    /// Runs `shell -c <command>` through the helper.
    pub(crate) async fn run(
        self: &Arc<Self>,
        shell: &std::path::Path,
        request: ShellRequest,
    ) -> Result<ShellOutput, ShellError> {
        let temp_dir = self.temp_dir().await?;
        let cgroup = self.command_cgroup().await;
        let mut policy = self.policy.clone();
        policy.write_paths.push(temp_dir.to_path_buf());
        policy.cgroup = cgroup.as_ref().map(|c| c.dir().to_path_buf());
        let policy_json =
            serde_json::to_string(&policy).map_err(|e| ShellError::Other(Box::new(e)))?;
        let mut command = command_for(&self.helper, &request);
        command
            .arg(HELPER_SUBCOMMAND)
            .arg("--policy")
            .arg(policy_json)
            .arg("--")
            .arg(shell)
            .arg("-c")
            .arg(&request.command)
            .stdin(Stdio::piped())
            .env("TMPDIR", temp_dir)
            .kill_on_drop(false);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                if let Some(cgroup) = cgroup {
                    remove_later(cgroup);
                }
                return Err(ShellError::Spawn(format!(
                    "could not start the sandbox helper {}: {e}",
                    self.helper.display()
                )));
            }
        };
        let mut guard = HelperGuard {
            stdin: child.stdin.take(),
            pid: child.id(),
            group: Some(ProcessGroup::led_by(&child)),
            cgroup,
        };
        capture::supervise(&mut child, &mut guard, request.timeout, request.output_cap)
            .await
            .map_err(|e| ShellError::Other(Box::new(e)))
    }

    async fn temp_dir(&self) -> Result<&Path, ShellError> {
        let made = self
            .temp_dir
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(|| {
                    tempfile::Builder::new()
                        .prefix("agent-runtime-run-")
                        .tempdir()
                })
                .await
                .map_err(|e| ShellError::Other(Box::new(e)))?
                .map_err(|e| ShellError::Spawn(format!("cannot create the run's temp dir: {e}")))
            })
            .await?;
        Ok(made.path())
    }

    async fn command_cgroup(&self) -> Option<CommandCgroup> {
        let root = self.cgroups.clone()?;
        let max = self.policy.rlimits.processes;
        match tokio::task::spawn_blocking(move || root.create(max)).await {
            Ok(Ok(cgroup)) => Some(cgroup),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "no cgroup for this command: processes unbounded");
                None
            }
            Err(_) => None,
        }
    }
}

/// What a sandboxed command leaves to clean up.
struct HelperGuard {
    stdin: Option<ChildStdin>,
    pid: Option<u32>,
    group: Option<ProcessGroup>,
    cgroup: Option<CommandCgroup>,
}

impl HelperGuard {
    /// The helper is gone: kill what is left in its group and cgroup.
    fn clean_up(&mut self) {
        self.stdin = None;
        if let Some(mut group) = self.group.take() {
            group.kill();
        }
        if let Some(cgroup) = self.cgroup.take() {
            remove_later(cgroup);
        }
    }
}

impl Stopper for HelperGuard {
    fn finished(&mut self) {
        self.clean_up();
    }

    /// Closing stdin makes the helper kill the command's whole tree and exit; the caller
    /// then reaps it (bounded), and `Drop` kills whatever remains.
    fn abort(&mut self) {
        self.stdin = None;
    }
}

impl Drop for HelperGuard {
    /// Cancelled mid-command: let the helper kill its tree (it needs to be alive for that),
    /// then kill its group and cgroup in the background.
    fn drop(&mut self) {
        if self.group.is_none() && self.cgroup.is_none() {
            return;
        }
        self.stdin = None;
        let pid = self.pid;
        let group = self.group.take();
        let cgroup = self.cgroup.take();
        let mut rest = HelperGuard {
            stdin: None,
            pid,
            group,
            cgroup,
        };
        let mut wait_then_clean = move || {
            wait_gone(pid, HELPER_GRACE);
            rest.clean_up();
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(wait_then_clean);
            }
            Err(_) => wait_then_clean(),
        }
    }
}

/// Waits (bounded) until `pid` has exited (gone or a zombie).
fn wait_gone(pid: Option<u32>, within: Duration) {
    let Some(pid) = pid else { return };
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = state
            .rfind(')')
            .and_then(|i| state.get(i + 1..))
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X");
        if !alive {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Empties and removes a cgroup on the blocking pool.
fn remove_later(cgroup: CommandCgroup) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(move || cgroup.remove());
        }
        Err(_) => cgroup.remove(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::shell::sandbox::Rlimits;

    fn sandbox() -> Arc<Sandbox> {
        Arc::new(Sandbox {
            helper: PathBuf::from("/nonexistent/agent-runtime"),
            policy: SandboxPolicy {
                landlock: false,
                read_paths: Vec::new(),
                write_paths: Vec::new(),
                devices: Vec::new(),
                network: false,
                rlimits: Rlimits::default(),
                cgroup: None,
            },
            cgroups: None,
            temp_dir: OnceCell::new(),
        })
    }

    fn request() -> ShellRequest {
        ShellRequest {
            command: "true".into(),
            cwd: "/".into(),
            env: Vec::new(),
            timeout: Duration::from_secs(5),
            output_cap: 1024,
        }
    }

    #[tokio::test]
    async fn the_temp_dir_is_made_by_the_first_command_kept_and_removed_with_the_sandbox() {
        let sandbox = sandbox();
        assert!(sandbox.temp_dir.get().is_none(), "no command, no temp dir");

        // The helper does not exist, so the command fails, but only after the temp dir.
        let err = sandbox.run(Path::new("/bin/sh"), request()).await;
        assert!(matches!(err, Err(ShellError::Spawn(_))), "{err:?}");
        let made = sandbox.temp_dir.get().unwrap().path().to_path_buf();
        assert!(made.is_dir());
        assert!(
            made.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("agent-runtime-run-")
        );

        let _ = sandbox.run(Path::new("/bin/sh"), request()).await;
        assert_eq!(sandbox.temp_dir.get().unwrap().path(), made, "one per run");

        drop(sandbox);
        assert!(!made.exists(), "removed with the sandbox");
    }
}
