//! Attacks of a prompt-injected model on the machine, through the real binary with its
//! defaults: the service's secrets through `/proc` (finding 1), the service's own files
//! through the file tools and the shell (finding 2), commands that outlive their call and
//! fork bombs (finding 8). The built-in `test:call:<tool>` model calls `<tool>` with the
//! input text as its arguments: the run's `config_override` picks the tool.
//!
//! Canary secrets live in the service's environment and `.env` under names that do not look
//! secret, so output scrubbing cannot be what hides them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::crash::Service;
use crate::support::{SseEvent, TOKEN, types};

const ENV_CANARY: &str = "env-canary-5d1f0c";
const DOTENV_CANARY: &str = "dotenv-canary-93ab71";
const PRESET: &str = "attack";

/// A service started in a fresh directory with a `.env` and canaries, its agent preset
/// having every file and shell tool.
struct Target {
    service: Service,
    dir: tempfile::TempDir,
    /// The service's real directory (symlinks resolved).
    root: PathBuf,
}

impl Target {
    async fn start(extra: &[(&str, &str)], uid: Option<u32>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(
            root.join(".env"),
            format!("PLAIN_SETTING={DOTENV_CANARY}\nAUTH_TOKEN={TOKEN}\n"),
        )
        .unwrap();
        if let Some(uid) = uid {
            std::os::unix::fs::chown(&root, Some(uid), Some(uid)).unwrap();
        }
        let mut env: Vec<(String, String)> = vec![
            ("PORT".into(), "0".into()),
            ("PLAIN_VALUE".into(), ENV_CANARY.into()),
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let service = Service::start_as(&root, &env, &root.join("service.log"), uid);
        let target = Self { service, dir, root };
        let (status, body) = target
            .service
            .post(
                "/api/presets/create",
                json!({
                    "preset_id": PRESET, "name": "Attack", "model": {"name": "test:echo"},
                    "toolsets": [{"toolset_name": "core"}, {"toolset_name": "filesystem"},
                                 {"toolset_name": "shell"}]
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        target
    }

    fn workspace(&self) -> PathBuf {
        self.root.join("workspace")
    }

    /// Runs `tool` with `args` on a new conversation; returns the tool's output and every
    /// event of the run.
    async fn call(&self, tool: &str, args: Value) -> (String, Vec<SseEvent>) {
        self.call_with(tool, args, json!({})).await
    }

    async fn call_with(&self, tool: &str, args: Value, over: Value) -> (String, Vec<SseEvent>) {
        let mut config_override = json!({"model": {"name": format!("test:call:{tool}")}});
        if let Value::Object(extra) = over {
            config_override.as_object_mut().unwrap().extend(extra);
        }
        let events = self
            .service
            .sse(
                Method::POST,
                "/api/conversations/run/stream",
                Some(json!({
                    "preset_id": PRESET,
                    "config_override": config_override,
                    "input": [{"type": "text", "text": args.to_string()}]
                })),
            )
            .await
            .all()
            .await;
        let output = events
            .iter()
            .find(|e| e.is("tool_call_result"))
            .map(|e| {
                e.payload()["output"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_else(|| panic!("no tool result: {}", types(&events)));
        (output, events)
    }

    /// Changes the attack preset's environment.
    async fn set_environment(&self, environment: Value) {
        let (status, body) = self
            .service
            .post(
                "/api/presets/attack/update",
                json!({"environment": environment}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn shell(&self, command: &str) -> String {
        self.call("shell", json!({"command": command})).await.0
    }
}

fn assert_no_canary(text: &str) {
    assert!(
        !text.contains(ENV_CANARY) && !text.contains(DOTENV_CANARY) && !text.contains(TOKEN),
        "a secret leaked: {text}"
    );
}

/// Finding 1: the command reads the service's environment through `/proc`, by its pid and
/// by walking up from `$PPID`; and its own environment holds nothing of the service's.
async fn secrets_through_proc(uid: Option<u32>) {
    let t = Target::start(&[], uid).await;
    let pid = t.service.child.id();
    let out = t
        .shell(&format!(
            "tr '\\0' '\\n' < /proc/{pid}/environ; \
             p=$PPID; for i in 1 2 3; do tr '\\0' '\\n' < /proc/$p/environ; \
             p=$(cut -d' ' -f4 /proc/$p/stat); done; env; echo done"
        ))
        .await;
    assert!(out.contains("done"), "{out}");
    assert!(
        out.contains("Permission denied"),
        "the service's environ must be refused: {out}"
    );
    assert_no_canary(&out);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_root_services_secrets_cannot_be_read_through_proc() {
    secrets_through_proc(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_root_services_secrets_cannot_be_read_through_proc() {
    // nobody: a service without root's capabilities, protected by being non-dumpable.
    secrets_through_proc(Some(65534)).await;
}

/// Finding 2: the seeded preset works in `./workspace`; the service's `.env`, database and
/// session files are out of reach of the file tools, by any path, and through a symlink.
#[tokio::test(flavor = "multi_thread")]
async fn the_file_tools_cannot_reach_the_services_own_files() {
    let t = Target::start(&[], None).await;
    let (status, seeded) = t.service.get("/api/presets/default/get").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seeded["environment"]["default_path"], ".");
    std::os::unix::fs::symlink(t.root.join(".env"), t.workspace().join("env-link")).unwrap();
    let env_file = t.root.join(".env").display().to_string();
    let db = t.root.join("data/runtime.db").display().to_string();
    for path in ["../.env", &env_file, "env-link", "../data/runtime.db", &db] {
        let (out, _) = t.call("view", json!({"path": path})).await;
        assert!(out.contains("access denied"), "{path}: {out}");
        assert_no_canary(&out);
    }
    let sessions = t.root.join("data/sessions");
    let before = dir_listing(&sessions);
    for (tool, args) in [
        (
            "write",
            json!({"path": "../.env", "content": "OPENAI_BASE_URL=http://evil"}),
        ),
        (
            "write",
            json!({"path": "../data/sessions/x/state.json", "content": "{}"}),
        ),
        (
            "copy",
            json!({"source": "../.env", "destination": "stolen"}),
        ),
        ("move", json!({"source": "../data", "destination": "data"})),
    ] {
        let (out, _) = t.call(tool, args.clone()).await;
        assert!(out.contains("access denied"), "{tool} {args}: {out}");
    }
    let dotenv = std::fs::read_to_string(t.root.join(".env")).unwrap();
    assert!(dotenv.contains(DOTENV_CANARY) && !dotenv.contains("evil"));
    assert!(!t.workspace().join("stolen").exists());
    // The only new sessions are these runs' own.
    assert!(dir_listing(&sessions).is_superset(&before));
    assert!(!sessions.join("x").exists());
    // A `file` input part is refused before any session exists.
    let (status, body) = t
        .service
        .post(
            "/api/conversations/run",
            json!({"preset_id": PRESET, "input": [{"type": "file", "path": "../.env"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_no_canary(&body.to_string());
}

fn dir_listing(dir: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Finding 2, the other door: no preset (or run override) may allow the service's files,
/// whatever path spells them.
#[tokio::test(flavor = "multi_thread")]
async fn presets_reaching_the_services_files_are_refused() {
    let t = Target::start(&[], None).await;
    let root = t.root.display().to_string();
    let data = t.root.join("data/sessions").display().to_string();
    for (environment, field) in [
        (json!({"default_path": root}), "environment.default_path"),
        (json!({"default_path": ".."}), "environment.default_path"),
        (
            json!({"allowed_paths": ["/srv/ok", data]}),
            "environment.allowed_paths[1]",
        ),
        (
            json!({"allowed_paths": ["../.env"]}),
            "environment.allowed_paths[0]",
        ),
    ] {
        let (status, body) = t
            .service
            .post(
                "/api/presets/create",
                json!({"preset_id": "greedy", "name": "g", "model": {"name": "test:echo"},
                       "environment": environment}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{environment}: {body}"
        );
        assert_eq!(body["error"], "validation_failed");
        let named = body["details"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == field);
        assert!(named, "{field} in {body}");
    }
    let (status, _) = t
        .service
        .post(
            "/api/presets/attack/update",
            json!({"environment": {"default_path": "."}, "name": "fine"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a path inside the workspace is fine"
    );
}

/// The Landlock sandbox: the shell reads system directories, writes its workspace and temp
/// dir, and nothing else; `network: false` denies TCP.
#[tokio::test(flavor = "multi_thread")]
async fn the_shell_is_confined_to_its_workspace() {
    if !adapters::shell::sandbox::landlock_available() {
        eprintln!("SKIP the_shell_is_confined_to_its_workspace: this kernel has no Landlock");
        return;
    }
    let t = Target::start(&[], None).await;
    let port = t.service.base().rsplit(':').next().unwrap().to_owned();
    let outside = t.dir.path().join("outside.txt");
    let out = t
        .shell(&format!(
            "cat ../.env; cat {root}/data/runtime.db | head -c 20; echo x > {outside}; \
             echo inside > in.txt && cat in.txt; echo tmp > $TMPDIR/t && cat $TMPDIR/t; \
             echo y > /tmp/escape-{port}; ls /root; head -c 4 /usr/bin/env | od -c | head -1; \
             (exec 3<>/dev/tcp/127.0.0.1/{port}) && echo net-open",
            root = t.root.display(),
            outside = outside.display(),
        ))
        .await;
    assert_no_canary(&out);
    assert!(out.contains("inside") && out.contains("tmp"), "{out}");
    assert!(
        out.contains("E   L   F"),
        "system directories stay readable: {out}"
    );
    assert!(
        out.contains("net-open"),
        "the network is on by default: {out}"
    );
    assert!(!outside.exists(), "{out}");
    assert!(!Path::new(&format!("/tmp/escape-{port}")).exists(), "{out}");
    assert!(t.workspace().join("in.txt").is_file());
    // The run's temp dir is its own and is removed with the run.
    let tmp = t.shell("echo $TMPDIR").await;
    let tmp: Value = serde_json::from_str(&tmp).unwrap();
    let tmp = tmp["stdout"].as_str().unwrap().trim().to_owned();
    assert!(tmp.contains("agent-runtime-run-"), "{tmp}");
    assert!(
        gone_within_path(Path::new(&tmp), Duration::from_secs(5)),
        "{tmp} kept"
    );

    let (out, _) = t
        .call_with(
            "shell",
            json!({"command": format!("(exec 3<>/dev/tcp/127.0.0.1/{port}) && echo net-open")}),
            json!({}),
        )
        .await;
    assert!(out.contains("net-open"), "{out}");
    t.set_environment(json!({"sandbox": {"network": false}}))
        .await;
    let out = t
        .shell(&format!(
            "(exec 3<>/dev/tcp/127.0.0.1/{port}) && echo net-open"
        ))
        .await;
    assert!(!out.contains("net-open"), "{out}");
}

/// Mode `off` runs the shell without Landlock and says so with a `warning` event, kept in
/// the transcript.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_off_is_announced_with_a_warning() {
    let t = Target::start(&[], None).await;
    t.set_environment(json!({"sandbox": {"mode": "off"}})).await;
    let (out, events) = t.call("shell", json!({"command": "echo hi"})).await;
    assert!(out.contains("hi"));
    let warning = events.iter().find(|e| e.is("warning")).expect("a warning");
    assert_eq!(warning.payload()["code"], "sandbox_off");
    let session = events[0].data["session_id"].as_str().unwrap().to_owned();
    let (_, got) = t.service.get(&format!("/api/sessions/{session}/get")).await;
    let kinds: Vec<&str> = got["display_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"warning"), "{kinds:?}");
}

/// A process alive whose command line contains `marker`.
fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(marker))
            .unwrap_or(false)
    })
}

fn gone_within_path(path: &Path, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn gone_within(marker: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !running(marker) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Finding 8: `setsid`, `nohup setsid` and double forks survive neither the end of the
/// command nor its timeout.
#[tokio::test(flavor = "multi_thread")]
async fn commands_cannot_outlive_their_call() {
    let t = Target::start(&[], None).await;
    let out = t
        .shell(
            "setsid sleep 611.1 & nohup setsid sleep 611.2 >/dev/null 2>&1 & \
             (setsid bash -c 'sleep 611.3' &) ; sleep 0.3; echo started",
        )
        .await;
    assert!(out.contains("started"), "{out}");
    for marker in ["sleep 611.1", "sleep 611.2", "sleep 611.3"] {
        assert!(
            gone_within(marker, Duration::from_secs(3)),
            "{marker} survived"
        );
    }
    let (out, _) = t
        .call(
            "shell",
            json!({"command": "setsid sleep 612.1 & (setsid sleep 612.2 &); sleep 612.3", "timeout_secs": 1}),
        )
        .await;
    assert!(out.contains("timeout"), "{out}");
    for marker in ["sleep 612.1", "sleep 612.2", "sleep 612.3"] {
        assert!(
            gone_within(marker, Duration::from_secs(3)),
            "{marker} survived"
        );
    }
}

/// Finding 8: after `kill -9` of the service, its running commands die with it (their
/// supervisor sees the service's end of the pipe close) and a restart finds nothing left.
#[tokio::test(flavor = "multi_thread")]
async fn commands_die_with_a_killed_service() {
    let t = Target::start(&[], None).await;
    let (status, started) = t
        .service
        .post(
            "/api/conversations/run",
            json!({"preset_id": PRESET, "config_override": {"model": {"name": "test:call:shell"}},
                   "input": [{"type": "text",
                              "text": json!({"command": "setsid sleep 613.1 & sleep 613.2"}).to_string()}]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(running("sleep 613.1") && running("sleep 613.2")) {
        assert!(Instant::now() < deadline, "the command did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut service = t.service;
    service.child.kill().unwrap();
    service.child.wait().unwrap();
    for marker in ["sleep 613.1", "sleep 613.2"] {
        assert!(
            gone_within(marker, Duration::from_secs(5)),
            "{marker} survived"
        );
    }
}

/// Finding 8: a fork bomb meets the per-command pids bound and the service goes on. Only
/// where a pids cgroup is in force: without it the bomb would take the machine down.
#[tokio::test(flavor = "multi_thread")]
async fn a_fork_bomb_is_bounded() {
    if !pids_cgroup_writable() {
        eprintln!("SKIP a_fork_bomb_is_bounded: no writable pids cgroup on this machine");
        return;
    }
    let t = Target::start(&[("SHELL_RLIMITS", "nproc=40")], None).await;
    let out = t
        .shell(
            "cat /proc/self/cgroup | grep pids; \
             cg=$(grep pids /proc/self/cgroup | cut -d: -f3); \
             echo max=$(cat /sys/fs/cgroup/pids$cg/pids.max)",
        )
        .await;
    assert!(out.contains("max=40"), "{out}");
    let (out, _) = t
        .call(
            "shell",
            json!({"command": "fb611() { fb611 | fb611 & }; fb611; sleep 2; echo survived", "timeout_secs": 3}),
        )
        .await;
    assert!(!out.is_empty());
    let (status, _) = t.service.get("/api/presets/list").await;
    assert_eq!(status, StatusCode::OK, "the service still answers");
    assert!(
        gone_within("fb611", Duration::from_secs(5)),
        "the bomb was not cleaned up"
    );
}

fn pids_cgroup_writable() -> bool {
    let probe = Path::new("/sys/fs/cgroup/pids/agent-runtime-probe");
    let ok = std::fs::create_dir_all(probe).is_ok() && probe.join("pids.max").exists();
    let _ = std::fs::remove_dir(probe);
    ok
}

/// Defence in depth: a secret value that reached a file the agent may read is scrubbed from
/// the tool's output, in the events and in the transcript.
#[tokio::test(flavor = "multi_thread")]
async fn tool_output_is_scrubbed_of_secret_values() {
    let key = "sk-scrub-canary-0042";
    let t = Target::start(&[("TAVILY_API_KEY", key)], None).await;
    std::fs::write(
        t.workspace().join("notes.txt"),
        format!("token {TOKEN} and key {key}\n"),
    )
    .unwrap();
    let (out, events) = t.call("view", json!({"path": "notes.txt"})).await;
    assert!(out.contains("token [redacted] and key [redacted]"), "{out}");
    let all: String = events.iter().map(|e| e.data.to_string()).collect();
    assert!(!all.contains(key) && !all.contains(TOKEN), "{all}");
}
