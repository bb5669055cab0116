//! `ports::Shell` contract against real processes: `LocalShell` directly, `DockerShell`
//! through a fake `docker` script (no engine on CI machines) that logs its argv and runs the
//! exec'd command locally, plus one real-engine test that runs only where `docker info` works.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use adapters::shell::{DockerShell, LocalShell};
use ports::{Shell, ShellError, ShellRequest};

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn request(command: &str, cwd: &Path) -> ShellRequest {
    ShellRequest {
        command: command.to_owned(),
        cwd: cwd.to_string_lossy().into_owned(),
        env: vec![("PATH".to_owned(), PATH.to_owned())],
        timeout: Duration::from_secs(20),
        output_cap: 64 * 1024,
    }
}

/// Whether a process is gone (a zombie waiting for init to reap it counts as gone).
fn pid_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn eventually_gone(pid: u32, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if pid_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pid_gone(pid)
}

async fn read_pid(file: &Path, within: Duration) -> u32 {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(start.elapsed() < within, "no pid in {}", file.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills a process a test deliberately let escape (setsid), so the suite leaves nothing behind.
fn kill_pid(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Variable names in `env` output.
fn env_names(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .filter_map(|line| line.split_once('=').map(|(k, _)| k.to_owned()))
        .collect()
}

/// What bash or sh add on their own, on top of the passed environment.
const SHELL_ADDED: &[&str] = &["PWD", "SHLVL", "_", "OLDPWD"];

fn assert_only_passed(names: &BTreeSet<String>, passed: &[&str]) {
    let extra: Vec<_> = names
        .iter()
        .filter(|n| !passed.contains(&n.as_str()) && !SHELL_ADDED.contains(&n.as_str()))
        .collect();
    assert!(extra.is_empty(), "leaked variables: {extra:?}");
}

/// Variables cargo sets in this test process; none may reach a command.
fn host_only_vars() -> Vec<String> {
    let vars: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("CARGO"))
        .collect();
    assert!(
        !vars.is_empty(),
        "expected cargo to set CARGO_* in the test process"
    );
    vars
}

// ---------------------------------------------------------------- local

#[tokio::test]
async fn local_captures_exit_code_stdout_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = LocalShell::new()
        .run(request("echo out; echo err >&2; exit 3", dir.path()))
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(3));
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    assert!(!out.timed_out && !out.stdout_truncated && !out.stderr_truncated);
}

#[tokio::test]
async fn local_honours_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let out = LocalShell::new()
        .run(request("pwd -P", dir.path()))
        .await
        .unwrap();
    let expected = dir.path().canonicalize().unwrap();
    assert_eq!(out.stdout.trim_end(), expected.to_str().unwrap());
}

#[tokio::test]
async fn local_env_is_exactly_the_request_env() {
    let dir = tempfile::tempdir().unwrap();
    let host_vars = host_only_vars();
    let mut req = request("env", dir.path());
    req.env
        .push(("AGENT_TEST_VAR".to_owned(), "hello world".to_owned()));
    let out = LocalShell::new().run(req).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("AGENT_TEST_VAR=hello world\n"));
    assert!(out.stdout.contains(&format!("PATH={PATH}\n")));
    let names = env_names(&out.stdout);
    assert_only_passed(&names, &["PATH", "AGENT_TEST_VAR"]);
    assert!(!names.contains("HOME"), "HOME was not passed");
    for var in host_vars {
        assert!(!names.contains(&var), "{var} leaked from the service");
    }
}

#[tokio::test]
async fn local_output_is_capped_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(
        "head -c 200000 /dev/zero | tr '\\0' a; echo short >&2",
        dir.path(),
    );
    req.output_cap = 1000;
    let out = LocalShell::new().run(req).await.unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(out.stdout.len(), 1000);
    assert!(out.stdout.bytes().all(|b| b == b'a'));
    assert!(out.stdout_truncated);
    assert_eq!(out.stderr, "short\n");
    assert!(!out.stderr_truncated);
}

#[tokio::test]
async fn local_truncation_cuts_on_a_character_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request("printf 'ééééé'", dir.path());
    req.output_cap = 5;
    let out = LocalShell::new().run(req).await.unwrap();
    assert_eq!(out.stdout, "éé");
    assert!(out.stdout_truncated);
}

#[tokio::test]
async fn local_signal_death_has_no_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = LocalShell::new()
        .run(request("kill -KILL $$", dir.path()))
        .await
        .unwrap();
    assert_eq!(out.exit_code, None);
    assert!(!out.timed_out);
}

#[tokio::test]
async fn local_timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("bg.pid");
    let mut req = request(
        &format!(
            "sleep 30 & echo $! > {}; echo started; sleep 30",
            pid_file.display()
        ),
        dir.path(),
    );
    req.timeout = Duration::from_secs(1);
    let start = Instant::now();
    let out = LocalShell::new().run(req).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
    assert_eq!(out.stdout, "started\n", "output so far is kept");
    let pid = read_pid(&pid_file, Duration::from_secs(1)).await;
    assert!(
        eventually_gone(pid, Duration::from_secs(2)).await,
        "background pid {pid} survived"
    );
}

#[tokio::test]
async fn local_background_children_do_not_outlive_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("bg.pid");
    let req = request(
        &format!("sleep 30 & echo $! > {}; echo done", pid_file.display()),
        dir.path(),
    );
    let start = Instant::now();
    let out = LocalShell::new().run(req).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!((out.exit_code, out.stdout.as_str()), (Some(0), "done\n"));
    let pid = read_pid(&pid_file, Duration::from_secs(1)).await;
    assert!(eventually_gone(pid, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn local_dropping_the_future_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let leader = dir.path().join("leader.pid");
    let child = dir.path().join("child.pid");
    let req = request(
        &format!(
            "echo $$ > {}; sleep 30 & echo $! > {}; wait",
            leader.display(),
            child.display()
        ),
        dir.path(),
    );
    let shell = LocalShell::new();
    let result = tokio::time::timeout(Duration::from_millis(700), shell.run(req)).await;
    assert!(
        result.is_err(),
        "the command should still have been running"
    );
    let leader = read_pid(&leader, Duration::from_secs(1)).await;
    let child = read_pid(&child, Duration::from_secs(1)).await;
    assert!(
        eventually_gone(leader, Duration::from_secs(2)).await,
        "shell {leader} survived"
    );
    assert!(
        eventually_gone(child, Duration::from_secs(2)).await,
        "child {child} survived"
    );
}

#[tokio::test]
async fn local_setsid_grandchild_does_not_hang_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("escaped.pid");
    let req = request(
        &format!(
            "setsid sh -c 'echo $$ > {0}; exec sleep 30' & \
             while [ ! -s {0} ]; do sleep 0.05; done; echo done",
            pid_file.display()
        ),
        dir.path(),
    );
    let start = Instant::now();
    let out = LocalShell::new().run(req).await.unwrap();
    let elapsed = start.elapsed();
    let escaped = read_pid(&pid_file, Duration::from_secs(2)).await;
    kill_pid(escaped);
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(out.stdout, "done\n");
    assert!(!out.timed_out);
}

#[tokio::test]
async fn local_bad_cwd_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = LocalShell::new()
        .run(request("true", &missing))
        .await
        .unwrap_err();
    match err {
        ShellError::Spawn(msg) => assert!(msg.contains("nope"), "{msg}"),
        other => panic!("expected Spawn, got {other:?}"),
    }
}

#[tokio::test]
async fn local_missing_shell_binary_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let shell = LocalShell::with_shell("/nonexistent/bash");
    let err = shell.run(request("true", dir.path())).await.unwrap_err();
    assert!(matches!(err, ShellError::Spawn(_)), "{err:?}");
}

// ---------------------------------------------------------------- docker (shim)

/// The shared fake `docker` (`adapters::testing::docker_shim`) in a directory of its own.
struct DockerShim {
    dir: tempfile::TempDir,
}

impl DockerShim {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        adapters::testing::docker_shim(dir.path()).unwrap();
        Self { dir }
    }

    fn shell(&self, container: &str) -> DockerShell {
        DockerShell::new(container).with_docker_bin(self.dir.path().join("docker"))
    }

    /// Every call so far: (argv, environment of the docker CLI).
    fn calls(&self) -> Vec<(Vec<String>, String)> {
        adapters::testing::docker_shim_calls(self.dir.path())
    }

    /// Waits for a call whose script kills the pid file's group.
    async fn wait_for_kill_exec(&self, container: &str, within: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let kill = self.calls().into_iter().map(|(argv, _)| argv).find(|argv| {
                argv.first().is_some_and(|a| a == "exec")
                    && argv.get(1).is_some_and(|a| a == container)
                    && argv.iter().any(|a| a.contains("kill -9"))
            });
            if let Some(argv) = kill {
                return argv;
            }
            assert!(
                start.elapsed() < within,
                "no kill exec; calls: {:?}",
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn docker_exec_argv_env_and_output() {
    let shim = DockerShim::new();
    let work = tempfile::tempdir().unwrap();
    let host_vars = host_only_vars();
    let mut req = request("echo hi; echo oops >&2; env; exit 4", work.path());
    req.env.push(("FOO".to_owned(), "bar baz".to_owned()));
    let out = shim.shell("c0ffee").run(req.clone()).await.unwrap();
    assert_eq!(out.exit_code, Some(4), "{}", out.stderr);
    assert!(out.stdout.starts_with("hi\n"), "{}", out.stdout);
    assert_eq!(out.stderr, "oops\n");
    let names = env_names(&out.stdout);
    assert_only_passed(&names, &["PATH", "FOO"]);
    assert!(out.stdout.contains("FOO=bar baz\n"));

    let calls = shim.calls();
    assert_eq!(calls.len(), 1, "only the exec, no kill: {calls:?}");
    let (argv, cli_env) = &calls[0];
    let cwd = work.path().to_str().unwrap();
    let expected_head = [
        "exec",
        "-i",
        "-w",
        cwd,
        "-e",
        &format!("PATH={PATH}"),
        "-e",
        "FOO=bar baz",
        "c0ffee",
        "sh",
        "-c",
    ];
    assert_eq!(&argv[..expected_head.len()], &expected_head[..], "{argv:?}");
    // The wrapper script spans lines; the command is the last argument.
    assert!(argv.iter().any(|a| a.contains("setsid")), "{argv:?}");
    assert_eq!(argv[argv.len() - 1], req.command);
    // The docker CLI itself gets no service variables either.
    let cli_names = env_names(cli_env);
    for var in host_vars {
        assert!(!cli_names.contains(&var), "{var} reached the docker CLI");
    }
}

#[tokio::test]
async fn docker_missing_container_is_a_spawn_error() {
    let shim = DockerShim::new();
    let work = tempfile::tempdir().unwrap();
    let err = shim
        .shell("missing")
        .run(request("true", work.path()))
        .await
        .unwrap_err();
    match err {
        ShellError::Spawn(msg) => {
            assert!(
                msg.contains("missing") && msg.contains("does not exist"),
                "{msg}"
            );
        }
        other => panic!("expected Spawn, got {other:?}"),
    }
}

#[tokio::test]
async fn docker_missing_cli_is_a_spawn_error() {
    let work = tempfile::tempdir().unwrap();
    let shell = DockerShell::new("c1").with_docker_bin("/nonexistent/docker");
    let err = shell.run(request("true", work.path())).await.unwrap_err();
    match err {
        ShellError::Spawn(msg) => assert!(msg.contains("c1"), "{msg}"),
        other => panic!("expected Spawn, got {other:?}"),
    }
}

#[tokio::test]
async fn docker_output_cap_applies() {
    let shim = DockerShim::new();
    let work = tempfile::tempdir().unwrap();
    let mut req = request("head -c 50000 /dev/zero | tr '\\0' b", work.path());
    req.output_cap = 100;
    let out = shim.shell("c1").run(req).await.unwrap();
    assert_eq!(out.stdout.len(), 100);
    assert!(out.stdout_truncated && !out.stderr_truncated);
}

#[tokio::test]
async fn docker_timeout_kills_inside_the_container() {
    let shim = DockerShim::new();
    let work = tempfile::tempdir().unwrap();
    let pid_file = work.path().join("cmd.pid");
    let mut req = request(
        &format!("echo $$ > {}; echo started; sleep 30", pid_file.display()),
        work.path(),
    );
    req.timeout = Duration::from_secs(1);
    let start = Instant::now();
    let out = shim.shell("c1").run(req).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
    assert_eq!(out.stdout, "started\n");
    let kill = shim.wait_for_kill_exec("c1", Duration::from_secs(5)).await;
    assert_eq!(&kill[..4], ["exec", "c1", "sh", "-c"]);
    let pid = read_pid(&pid_file, Duration::from_secs(1)).await;
    assert!(
        eventually_gone(pid, Duration::from_secs(5)).await,
        "command {pid} survived"
    );
}

#[tokio::test]
async fn docker_dropping_the_future_kills_inside_the_container() {
    let shim = DockerShim::new();
    let work = tempfile::tempdir().unwrap();
    let pid_file = work.path().join("cmd.pid");
    let req = request(
        &format!("echo $$ > {}; sleep 30", pid_file.display()),
        work.path(),
    );
    let shell = shim.shell("c1");
    let result = tokio::time::timeout(Duration::from_millis(800), shell.run(req)).await;
    assert!(
        result.is_err(),
        "the command should still have been running"
    );
    shim.wait_for_kill_exec("c1", Duration::from_secs(5)).await;
    let pid = read_pid(&pid_file, Duration::from_secs(1)).await;
    assert!(
        eventually_gone(pid, Duration::from_secs(5)).await,
        "command {pid} survived"
    );
}

// ---------------------------------------------------------------- docker (real engine)

fn docker_engine() -> Option<PathBuf> {
    let ok = std::process::Command::new("docker")
        .arg("info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| PathBuf::from("docker"))
}

#[tokio::test]
async fn docker_real() {
    if docker_engine().is_none() {
        eprintln!("SKIP shell::docker_real: no docker engine");
        return;
    }
    let started = std::process::Command::new("docker")
        .args(["run", "-d", "--rm", "busybox", "sleep", "120"])
        .output()
        .unwrap();
    if !started.status.success() {
        eprintln!(
            "SKIP shell::docker_real: could not start a busybox container: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        return;
    }
    let id = String::from_utf8_lossy(&started.stdout).trim().to_owned();
    let shell = DockerShell::new(id.clone());
    let mut req = request("echo $FOO; pwd; exit 5", Path::new("/tmp"));
    req.env.push(("FOO".to_owned(), "from-test".to_owned()));
    let out = shell.run(req).await;
    let mut slow = request("sleep 30", Path::new("/"));
    slow.timeout = Duration::from_secs(1);
    let timed = shell.run(slow).await;
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &id])
        .output();
    let out = out.unwrap();
    assert_eq!(out.exit_code, Some(5), "{}", out.stderr);
    assert_eq!(out.stdout, "from-test\n/tmp\n");
    assert!(timed.unwrap().timed_out);
}

/// Commands a crashed service left in their cgroups are killed by the next start's sweep.
/// Only where this machine lets us create a `pids` cgroup.
#[test]
fn a_sweep_kills_what_command_cgroups_still_hold() {
    use adapters::shell::sandbox::cgroup::CgroupRoot;
    let instance = format!("test-{}", uuid::Uuid::new_v4().simple());
    let Some(root) = CgroupRoot::detect(&instance) else {
        eprintln!("SKIP a_sweep_kills_what_command_cgroups_still_hold: no pids cgroup here");
        return;
    };
    let cgroup = root.create(16).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    std::fs::write(cgroup.dir().join("cgroup.procs"), child.id().to_string()).unwrap();
    let max = std::fs::read_to_string(cgroup.dir().join("pids.max")).unwrap();
    assert_eq!(max.trim(), "16");
    let dir = cgroup.dir().to_path_buf();
    std::mem::forget(cgroup); // as a crash would leave it
    assert_eq!(root.sweep(), 1);
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed: {status}");
    assert!(!dir.exists());
    let _ = std::fs::remove_dir(root.dir());
}
