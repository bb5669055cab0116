//! Commands inside the user's running container through the docker CLI (spec 03,
//! environment; notes/dependencies.md §5 for why the CLI and not the Engine API).
//!
//! `docker exec -i -w <cwd> -e K=V… <container> sh -c <wrapper> agent-runtime <command>`.
//! The container process gets only the `-e` variables (plus the image's own defaults);
//! the docker CLI itself gets `PATH`, `HOME` and the `DOCKER_*` settings it needs to reach
//! the daemon, nothing else of the service's environment.
//!
//! Killing the CLI does not kill the process in the container (there is no "kill exec"
//! endpoint), so the wrapper starts the command in a new session under `timeout -s KILL`
//! (when the container has those tools) and records its process group in a pid file. On
//! timeout or cancellation a second, fire-and-forget `docker exec` kills that group.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use ports::{Shell, ShellError, ShellOutput, ShellRequest};
use tokio::process::Command;

use super::capture::{self, Stopper};
use super::group::ProcessGroup;

/// Service variables the docker CLI needs to find and reach the daemon.
const CLI_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_API_VERSION",
    "XDG_RUNTIME_DIR",
];

/// Extra seconds the in-container `timeout` allows beyond the request's timeout, so the
/// runtime's own deadline (which reports `timed_out`) fires first.
const IN_CONTAINER_SLACK_SECS: u64 = 2;

/// How long the kill exec may take before it is abandoned.
const KILL_EXEC_WAIT: Duration = Duration::from_secs(30);

/// Runs commands in a running container with `docker exec`.
#[derive(Debug, Clone)]
pub struct DockerShell {
    container_id: String,
    docker_bin: PathBuf,
}

impl DockerShell {
    /// Commands run in `container_id`, with `docker` from the service's `PATH`.
    pub fn new(container_id: impl Into<String>) -> Self {
        Self {
            container_id: container_id.into(),
            docker_bin: PathBuf::from("docker"),
        }
    }

    /// Uses this docker CLI binary instead (a path, or a name looked up on `PATH`).
    #[must_use]
    pub fn with_docker_bin(mut self, docker_bin: impl Into<PathBuf>) -> Self {
        self.docker_bin = docker_bin.into();
        self
    }

    /// The arguments of the exec that runs `request`.
    fn exec_args(&self, request: &ShellRequest, pid_file: &str) -> Vec<OsString> {
        let limit = request
            .timeout
            .as_secs()
            .saturating_add(IN_CONTAINER_SLACK_SECS);
        let mut args: Vec<OsString> = vec!["exec".into(), "-i".into()];
        args.push("-w".into());
        args.push(request.cwd.clone().into());
        for (key, value) in &request.env {
            args.push("-e".into());
            args.push(format!("{key}={value}").into());
        }
        args.push(self.container_id.clone().into());
        args.push("sh".into());
        args.push("-c".into());
        args.push(wrapper_script(pid_file, limit).into());
        args.push("agent-runtime".into());
        args.push(request.command.clone().into());
        args
    }

    fn spawn_error(&self, e: &std::io::Error) -> ShellError {
        if e.kind() == std::io::ErrorKind::NotFound {
            ShellError::Spawn(format!(
                "docker CLI not found ({}): cannot run commands in container {}",
                self.docker_bin.display(),
                self.container_id
            ))
        } else {
            ShellError::Spawn(format!(
                "could not run {} for container {}: {e}",
                self.docker_bin.display(),
                self.container_id
            ))
        }
    }
}

#[async_trait]
impl Shell for DockerShell {
    async fn run(&self, request: ShellRequest) -> Result<ShellOutput, ShellError> {
        let pid_file = format!(
            "/tmp/.agent-runtime-exec-{}.pid",
            uuid::Uuid::new_v4().simple()
        );
        let mut command = cli_command(&self.docker_bin);
        command
            .args(self.exec_args(&request, &pid_file))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| self.spawn_error(&e))?;
        // Dropped before `child` on cancellation: kills the CLI and the in-container group.
        let mut stopper = ExecStopper {
            cli: ProcessGroup::led_by(&child),
            in_container: Some(KillExec {
                docker_bin: self.docker_bin.clone(),
                container_id: self.container_id.clone(),
                pid_file,
            }),
        };
        let output = capture::supervise(
            &mut child,
            &mut stopper,
            request.timeout,
            request.output_cap,
        )
        .await
        .map_err(|e| ShellError::Other(Box::new(e)))?;
        match docker_failure(&self.container_id, &output) {
            Some(message) => Err(ShellError::Spawn(message)),
            None => Ok(output),
        }
    }
}

/// The docker CLI with a cleared environment plus what it needs to reach the daemon.
fn cli_command(docker_bin: &Path) -> Command {
    let mut command = Command::new(docker_bin);
    command.env_clear().envs(cli_env());
    command
}

pub(super) fn cli_env() -> Vec<(&'static str, OsString)> {
    CLI_ENV
        .iter()
        .filter_map(|name| std::env::var_os(name).map(|value| (*name, value)))
        .collect()
}

/// Runs `$1` in a new session (its pid is the group id, written to the pid file) under an
/// in-container `timeout -s KILL` as a second line of defence. Degrades gracefully when the
/// image lacks bash, setsid or a working `timeout`. Exits with the command's status.
fn wrapper_script(pid_file: &str, limit_secs: u64) -> String {
    format!(
        r#"pf='{pid_file}'
if command -v bash >/dev/null 2>&1; then run=bash; else run=sh; fi
lim=
if timeout -s KILL 5 true >/dev/null 2>&1; then lim="timeout -s KILL {limit_secs}"; fi
if command -v setsid >/dev/null 2>&1; then
  setsid $lim "$run" -c "$1" &
  pid=$!
  echo "-$pid" > "$pf"
else
  $lim "$run" -c "$1" &
  pid=$!
  echo "$pid" > "$pf"
fi
wait "$pid"
rc=$?
rm -f "$pf"
exit "$rc""#
    )
}

/// Kills the group recorded in the pid file (waiting briefly for it to appear).
fn kill_script(pid_file: &str) -> String {
    format!(
        r#"pf='{pid_file}'
for i in 1 2 3; do [ -f "$pf" ] && break; sleep 1; done
[ -f "$pf" ] && kill -9 $(cat "$pf") 2>/dev/null
rm -f "$pf"
exit 0"#
    )
}

/// On timeout or cancellation: kill the local CLI and, through a second exec, the command
/// inside the container. When the command finished, only the CLI's group is reaped.
struct ExecStopper {
    cli: ProcessGroup,
    in_container: Option<KillExec>,
}

impl Stopper for ExecStopper {
    fn finished(&mut self) {
        self.in_container = None;
        self.cli.kill();
    }

    fn abort(&mut self) {
        self.cli.kill();
        if let Some(kill) = self.in_container.take() {
            kill.spawn();
        }
    }
}

impl Drop for ExecStopper {
    fn drop(&mut self) {
        self.abort();
    }
}

/// The second `docker exec` that kills the in-container process group.
struct KillExec {
    docker_bin: PathBuf,
    container_id: String,
    pid_file: String,
}

impl KillExec {
    fn args(&self) -> Vec<OsString> {
        vec![
            "exec".into(),
            self.container_id.clone().into(),
            "sh".into(),
            "-c".into(),
            kill_script(&self.pid_file).into(),
        ]
    }

    /// Starts the kill without waiting for it (this runs in `Drop`, which cannot await).
    fn spawn(self) {
        let args = self.args();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let mut command = cli_command(&self.docker_bin);
                command
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true);
                handle.spawn(async move {
                    match command.spawn() {
                        Ok(mut child) => {
                            let _ = tokio::time::timeout(KILL_EXEC_WAIT, child.wait()).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not start the docker kill exec")
                        }
                    }
                });
            }
            Err(_) => {
                // No runtime (dropped outside one): a thread waits for the CLI instead.
                let docker_bin = self.docker_bin;
                std::thread::spawn(move || {
                    let status = std::process::Command::new(&docker_bin)
                        .env_clear()
                        .envs(cli_env())
                        .args(args)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                    if let Err(e) = status {
                        tracing::warn!(error = %e, "could not start the docker kill exec");
                    }
                });
            }
        }
    }
}

/// The docker CLI's own failures (missing or stopped container, unreachable daemon,
/// nothing to exec) as a message naming the container; `None` for the command's own output.
fn docker_failure(container_id: &str, output: &ShellOutput) -> Option<String> {
    if output.timed_out || !matches!(output.exit_code, Some(1 | 125 | 126 | 127)) {
        return None;
    }
    let line = output
        .stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    let from_docker = line.starts_with("Error response from daemon")
        || line.starts_with("Error: No such container")
        || line.starts_with("OCI runtime exec failed")
        || line.contains("Cannot connect to the Docker daemon");
    if !from_docker {
        return None;
    }
    let what = if line.contains("No such container") {
        "does not exist"
    } else if line.contains("is not running") {
        "is not running"
    } else if line.contains("is paused") {
        "is paused"
    } else if line.contains("Cannot connect to the Docker daemon") {
        "is unreachable (no docker daemon)"
    } else {
        "could not run the command"
    };
    Some(format!("container {container_id} {what} (docker: {line})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: i32, stderr: &str) -> ShellOutput {
        ShellOutput {
            exit_code: Some(code),
            stderr: stderr.to_owned(),
            ..ShellOutput::default()
        }
    }

    #[test]
    fn daemon_errors_name_the_container() {
        let out = failed(1, "Error response from daemon: No such container: web\n");
        let msg = docker_failure("web", &out).unwrap_or_default();
        assert!(msg.contains("container web does not exist"), "{msg}");
        let out = failed(
            1,
            "Error response from daemon: container abc is not running\n",
        );
        let msg = docker_failure("abc", &out).unwrap_or_default();
        assert!(msg.contains("is not running"), "{msg}");
    }

    #[test]
    fn the_commands_own_failures_are_output() {
        assert_eq!(
            docker_failure("web", &failed(1, "grep: foo: No such file\n")),
            None
        );
        assert_eq!(
            docker_failure("web", &failed(2, "Error response from daemon")),
            None
        );
        assert_eq!(docker_failure("web", &failed(0, "")), None);
    }
}
