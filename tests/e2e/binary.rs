//! The built binary, as a newcomer runs it.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use adapters::sql::{SqlSettings, SqlStorage, SqlTarget};
use ports::{SessionRepo, SessionStatus};

use crate::support::{conversation, running_session};

const BIN: &str = env!("CARGO_BIN_EXE_agent-runtime");

/// A started binary; killed when dropped.
struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary in `dir` with exactly `env` and waits for its `listening on` line.
fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .replace("0.0.0.0", "127.0.0.1");
    Running {
        child,
        base: format!("http://{addr}"),
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn starts_with_no_environment_in_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    // Truly no environment means the default port 8000; fall back to an ephemeral port only
    // when something else already holds 8000 on this machine.
    let free = std::net::TcpListener::bind("0.0.0.0:8000").is_ok();
    let env: &[(&str, &str)] = if free { &[] } else { &[("PORT", "0")] };
    let mut running = start(dir.path(), env);
    let health: serde_json::Value = reqwest::get(format!("{}/api/health", running.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health,
        serde_json::json!({"status": "ok", "database": "connected", "event_bus": "connected", "state_store": "connected", "sandbox": crate::support::sandbox_status(), "draining": false})
    );
    assert!(
        dir.path().join("data/runtime.db").is_file(),
        "embedded database under ./data"
    );

    sigterm(&running.child);
    let status = wait_exit(&mut running.child, Duration::from_secs(10));
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
}

#[test]
fn a_bad_variable_stops_the_process_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().display().to_string();
    for (var, value) in [
        // A workspace root or sandbox read path holding the service's data (./data).
        ("WORKSPACE_ROOT", "."),
        ("SANDBOX_READ_PATHS", here.as_str()),
        ("PORT", "eighty"),
        ("STATE_STORE", "floppy"),
        ("DATABASE_URL", "mysql://x"),
        ("AUTH_TOKEN", "a"),
        ("SHELL_RLIMITS", "nofile=lots"),
    ] {
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&format!("{var}: ")), "{stderr}");
    }
    // A .env file is read too, and the real environment wins over it.
    std::fs::write(dir.path().join(".env"), "PORT=nope\n").unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("PORT: "));
}

#[test]
fn migrate_and_openapi_commands() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            .args(args)
            .output()
            .unwrap()
    };
    let first = run(&["migrate"]);
    assert!(first.status.success());
    assert_eq!(
        String::from_utf8(first.stdout).unwrap().trim(),
        format!("applied {} migration(s)", sqlite_migrations())
    );
    let second = run(&["migrate"]);
    assert_eq!(
        String::from_utf8(second.stdout).unwrap().trim(),
        "applied 0 migration(s)"
    );
    let spec = run(&["openapi"]);
    assert_eq!(
        String::from_utf8(spec.stdout).unwrap().trim_end(),
        agent_runtime::api::spec_json().trim_end()
    );

    // `agent-runtime openapi | head -c 10`: the reader leaves early, the command ends quietly.
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .args(["openapi", "--yaml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "",
        "no panic on a closed pipe"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_orphaned_by_a_crash_fail_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/runtime.db").display().to_string();
    let storage = SqlStorage::connect(
        &SqlTarget::Sqlite { path: db.clone() },
        &SqlSettings::default(),
    )
    .await
    .unwrap();
    storage.migrate().await.unwrap();
    storage
        .create_session(&running_session("c1", "c1", None), Some(conversation("c1")))
        .await
        .unwrap();

    let running = start(dir.path(), &[("PORT", "0"), ("HOST", "127.0.0.1")]);
    // `listening on` is printed only after recovery, so the row is already failed.
    let orphan = storage.get_session(&"c1".into()).await.unwrap();
    assert_eq!(orphan.status, SessionStatus::Failed);
    assert!(orphan.error.unwrap().contains("stopped"));
    storage
        .create_session(&running_session("c2", "c1", None), None)
        .await
        .unwrap();
    drop(running);
}

/// Finding 10: a generated token is kept in the data directory (0600), reused after a
/// restart, and logged only by its first characters and where to find it.
#[tokio::test(flavor = "multi_thread")]
async fn a_generated_token_is_kept_private_and_reused() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let env = vec![("PORT".to_owned(), "0".to_owned())];
    let log = dir.path().join("first.log");
    let first = crate::crash::Service::start(dir.path(), &env, &log);
    let file = dir.path().join("data/auth_token");
    let token = std::fs::read_to_string(&file).unwrap();
    assert_eq!(token.len(), 64);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let status = |base: String, token: String| async move {
        reqwest::Client::new()
            .get(format!("{base}/api/presets/list"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(status(first.base().to_owned(), token.clone()).await, 200);
    drop(first);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains(&token), "the token was logged: {logged}");
    assert!(
        logged.contains(&token[..4]) && logged.contains("auth_token"),
        "{logged}"
    );

    let second = crate::crash::Service::start(dir.path(), &env, &dir.path().join("second.log"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), token);
    assert_eq!(status(second.base().to_owned(), token).await, 200);
}

/// How many migrations the SQLite set holds.
fn sqlite_migrations() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count()
}

/// `--help` lists every variable of the README's configuration table as a flag with its
/// environment variable, and never a secret's value.
#[test]
fn help_lists_every_setting_of_the_readme() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap();
    let variables: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| l.split('|').nth(1).unwrap().split(','))
        .map(|v| v.trim().trim_matches('`'))
        .filter(|v| !v.contains('{'))
        .collect();
    assert!(variables.len() > 40, "{variables:?}");
    let out = Command::new(BIN)
        .arg("--help")
        .env("AUTH_TOKEN", "help-must-not-show-this-token")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for var in &variables {
        assert!(
            help.contains(&format!("[env: {var}]")),
            "{var} missing from --help"
        );
        let flag = format!("--{}", var.to_ascii_lowercase().replace('_', "-"));
        assert!(help.contains(&flag), "{flag} missing from --help");
    }
    assert!(help.contains("--config <FILE>"), "{help}");
    assert!(help.contains("[default: 8000]"), "defaults are shown");
    assert!(!help.contains("help-must-not-show-this-token"));
}

/// Settings from `--config FILE` (TOML), flags over the environment over the file:
/// the file names the database and token, the environment a port the flag overrides.
#[tokio::test(flavor = "multi_thread")]
async fn flags_win_over_the_environment_and_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent-runtime.toml");
    std::fs::write(
        &config,
        format!(
            "auth_token = \"file-token-0123456789\"\ndatabase_url = \"sqlite://{}/file.db\"\nstate_store_path = \"{}\"\nport = 1\n",
            dir.path().display(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let env = vec![
        ("PORT".to_owned(), "2".to_owned()),
        ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
    ];
    let log = dir.path().join("service.log");
    let config = config.display().to_string();
    let service = crate::crash::Service::start_with(
        dir.path(),
        &env,
        &log,
        None,
        &[
            "--config",
            &config,
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "serve",
        ],
    );
    let resp = reqwest::Client::new()
        .get(format!("{}/api/presets/list", service.base()))
        .bearer_auth("file-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK, "the file's token");
    assert!(dir.path().join("file.db").exists(), "the file's database");
}
