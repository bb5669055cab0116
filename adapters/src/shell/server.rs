//! Long-lived server processes of an environment (a preset's stdio MCP servers): started
//! like its shell commands, confined the same way, but with stdin and stdout left open for
//! a protocol and no timeout. The [`ServerProcess`] owns the process: dropping it kills the
//! process group, its cgroup and everything in it, and removes its temp dir.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::group::ProcessGroup;
use super::sandbox::HELPER_SUBCOMMAND;
use super::sandbox::SandboxPolicy;
use super::sandbox::cgroup::{CgroupRoot, CommandCgroup};
use super::sandbox::helper::ATTACH_FLAG;

/// Lines of a server's stderr kept to explain why it failed.
const STDERR_LINES: usize = 8;
/// Characters kept of one stderr line.
const STDERR_LINE_CHARS: usize = 300;

/// What to start.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    pub program: String,
    pub args: Vec<String>,
    /// The whole environment: nothing is inherited.
    pub env: Vec<(String, String)>,
    pub cwd: String,
}

/// How the process is confined.
#[derive(Debug, Clone)]
pub enum ServerConfinement {
    /// A plain process group (tests of the mechanics).
    None,
    /// Through the sandbox helper, with a temp dir of its own.
    Sandboxed {
        helper: PathBuf,
        policy: SandboxPolicy,
        cgroups: Option<CgroupRoot>,
    },
    /// `docker exec -i` in a running container.
    Docker {
        docker_bin: PathBuf,
        container_id: String,
    },
}

/// A running server: its stdin and stdout carry the protocol; the guard owns the process.
#[derive(Debug)]
pub struct ServerProcess {
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub guard: ServerGuard,
}

/// Kills the server's process group and cgroup, and removes its temp dir, when dropped.
#[derive(Debug)]
pub struct ServerGuard {
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    // Dropped in this order: the group is killed, then the cgroup emptied, then the child
    // reaped by tokio, then the temp dir removed.
    group: ProcessGroup,
    cgroup: Option<CommandCgroup>,
    _child: Child,
    _temp_dir: Option<tempfile::TempDir>,
}

impl ServerGuard {
    /// The last lines the server wrote to stderr (why it failed to start, usually).
    pub fn stderr_tail(&self) -> String {
        let lines = self
            .stderr_tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.group.kill();
        if let Some(cgroup) = self.cgroup.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn_blocking(move || cgroup.remove());
                }
                Err(_) => cgroup.remove(),
            }
        }
    }
}

/// Starts `command` as `confinement` says.
///
/// # Errors
/// The process (or the helper, or the docker CLI) could not be started, or its temp dir
/// or cgroup could not be made.
pub fn start(
    command: &ServerCommand,
    confinement: &ServerConfinement,
) -> std::io::Result<ServerProcess> {
    let Prepared {
        mut cmd,
        temp_dir,
        mut cgroup,
    } = prepare(command, confinement)?;
    cmd.process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        if let Some(cgroup) = cgroup.take() {
            cgroup.remove();
        }
        std::io::Error::new(e.kind(), format!("cannot start {}: {e}", command.program))
    })?;
    let group = ProcessGroup::led_by(&child);
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("the server's pipes were not opened"));
    };
    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    keep_stderr(stderr, stderr_tail.clone(), command.program.clone());
    Ok(ServerProcess {
        stdin,
        stdout,
        guard: ServerGuard {
            stderr_tail,
            group,
            cgroup,
            _child: child,
            _temp_dir: temp_dir,
        },
    })
}

/// A command ready to spawn, with what its confinement made for it.
struct Prepared {
    cmd: Command,
    temp_dir: Option<tempfile::TempDir>,
    cgroup: Option<CommandCgroup>,
}

/// The command line and environment of `command` under `confinement`.
fn prepare(command: &ServerCommand, confinement: &ServerConfinement) -> std::io::Result<Prepared> {
    let env = command.env.iter().map(|(k, v)| (k, v));
    match confinement {
        ServerConfinement::None => {
            let mut cmd = Command::new(&command.program);
            cmd.args(&command.args)
                .current_dir(&command.cwd)
                .env_clear()
                .envs(env);
            Ok(Prepared {
                cmd,
                temp_dir: None,
                cgroup: None,
            })
        }
        ServerConfinement::Sandboxed {
            helper,
            policy,
            cgroups,
        } => {
            let dir = tempfile::Builder::new()
                .prefix("agent-runtime-server-")
                .tempdir()?;
            let cgroup = cgroups
                .as_ref()
                .map(|root| root.create(policy.rlimits.processes))
                .transpose()?;
            let mut policy = policy.clone();
            policy.write_paths.push(dir.path().to_path_buf());
            policy.cgroup = cgroup.as_ref().map(|c| c.dir().to_path_buf());
            let policy = serde_json::to_string(&policy).map_err(std::io::Error::other)?;
            let mut cmd = Command::new(helper);
            cmd.arg(HELPER_SUBCOMMAND)
                .arg("--policy")
                .arg(policy)
                .arg(ATTACH_FLAG)
                .arg("--")
                .arg(&command.program)
                .args(&command.args)
                .current_dir(&command.cwd)
                .env_clear()
                .envs(env)
                .env("TMPDIR", dir.path());
            Ok(Prepared {
                cmd,
                temp_dir: Some(dir),
                cgroup,
            })
        }
        ServerConfinement::Docker {
            docker_bin,
            container_id,
        } => {
            // The variables travel as `-e`; the CLI itself gets only what reaches the daemon.
            let mut cmd = Command::new(docker_bin);
            cmd.args(docker_args(command, container_id))
                .env_clear()
                .envs(super::docker::cli_env());
            Ok(Prepared {
                cmd,
                temp_dir: None,
                cgroup: None,
            })
        }
    }
}

/// `docker exec -i -w <cwd> -e K=V … <container> <program> <args…>`.
fn docker_args(command: &ServerCommand, container_id: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "exec".into(),
        "-i".into(),
        "-w".into(),
        command.cwd.clone().into(),
    ];
    for (key, value) in &command.env {
        args.push("-e".into());
        args.push(format!("{key}={value}").into());
    }
    args.push(container_id.into());
    args.push(command.program.clone().into());
    args.extend(command.args.iter().map(OsString::from));
    args
}

/// Logs the server's stderr and keeps its last lines.
fn keep_stderr(stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>, program: String) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line: String = line.chars().take(STDERR_LINE_CHARS).collect();
            tracing::debug!(server = %program, "{line}");
            let mut kept = tail
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if kept.len() == STDERR_LINES {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    });
}

/// Whether `dir` is a directory (a clear error instead of spawn's "No such file").
pub fn check_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) => Err(format!("{} is not usable: {e}", dir.display())),
    }
}
