//! Docker mode through the real binary (spec 03, environment): with a fake `docker` on the
//! service's PATH (no engine on CI machines), a preset in docker mode runs its shell
//! commands as `docker exec -w <container_workdir> … <container_id>`, and a missing
//! container is a tool error the model reads, not a failed run.

use adapters::testing::{docker_shim, docker_shim_calls};
use mock_llm::{MockLlm, Script};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::crash::Service;
use crate::support::{SseEvent, TOKEN, shell_call, text_input};

/// Runs preset `preset_id` to its end and returns its events and its one tool result.
async fn run_with_tool(service: &Service, preset_id: &str) -> (Vec<SseEvent>, Value) {
    let events = service
        .sse(
            Method::POST,
            "/api/conversations/run/stream",
            Some(json!({"preset_id": preset_id, "input": text_input("go")})),
        )
        .await
        .all()
        .await;
    let result = events
        .iter()
        .find(|e| e.is("tool_call_result"))
        .expect("a tool result")
        .payload()
        .clone();
    (events, result)
}

/// A temp dir with a working directory and a `docker` shim for a service started from
/// the binary with [`DockerBox::service_env`].
pub(crate) struct DockerBox {
    pub(crate) dir: tempfile::TempDir,
    /// The "container" directory: the shim runs on this machine, so it is a host path.
    pub(crate) work: std::path::PathBuf,
    pub(crate) shim: std::path::PathBuf,
}

impl DockerBox {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let shim = dir.path().join("shim");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&shim).unwrap();
        docker_shim(&shim).unwrap();
        Self { dir, work, shim }
    }

    /// The service's variables: SQLite and files in the temp dir, the shim first on PATH,
    /// and `extra`.
    pub(crate) fn service_env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let path = format!("{}:/usr/bin:/bin", self.shim.display());
        let mut env = binary_env(self.dir.path(), path);
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env
    }
}

/// The variables of a service started from the binary in `dir`: loopback on a free port,
/// the test token, SQLite and state files in `dir`, and `path` as its PATH.
pub(crate) fn binary_env(dir: &std::path::Path, path: String) -> Vec<(String, String)> {
    [
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("AUTH_TOKEN", TOKEN.to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/runtime.db", dir.display()),
        ),
        ("STATE_STORE_PATH", dir.join("state").display().to_string()),
        ("PATH", path),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_commands_run_through_docker_exec_and_a_missing_container_is_a_tool_error() {
    let docker = DockerBox::new();
    let (dir, work, shim) = (&docker.dir, &docker.work, &docker.shim);
    let mock = MockLlm::start().await;
    let env = docker.service_env(&[
        ("OPENAI_API_KEY", "k".to_owned()),
        ("OPENAI_BASE_URL", mock.base_url()),
    ]);
    let service = Service::start(dir.path(), &env, &dir.path().join("service.log"));
    let work_path = work.display().to_string();
    for (id, container) in [("in-box", "box"), ("no-box", "missing")] {
        let (status, body) = service
            .post(
                "/api/presets/create",
                json!({
                    "preset_id": id, "name": id,
                    "model": {"name": "openai:gpt-test"},
                    "toolsets": [{"toolset_name": "shell"}],
                    "environment": {
                        "shell_mode": "docker", "container_id": container,
                        // The shim runs on this machine, so the "container" path is the host one.
                        "container_workdir": work_path, "default_path": work_path
                    }
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    mock.push(shell_call("c1", "echo inside > marker.txt; pwd"));
    mock.push(Script::text("done", 1));
    let (events, result) = run_with_tool(&service, "in-box").await;
    assert_eq!(result["is_error"], false, "{result}");
    assert!(
        result["output"].as_str().unwrap().contains(&work_path),
        "{result}"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("marker.txt")).unwrap(),
        "inside\n"
    );
    let calls = docker_shim_calls(shim);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let argv = &calls[0].0;
    assert_eq!(argv.first().map(String::as_str), Some("exec"), "{argv:?}");
    assert!(
        argv.windows(2).any(|w| w[0] == "-w" && w[1] == work_path),
        "{argv:?}"
    );
    assert!(argv.iter().any(|a| a == "box"), "{argv:?}");
    assert!(
        !argv.iter().any(|a| a.contains("OPENAI_API_KEY")),
        "no credential reaches the container: {argv:?}"
    );
    assert!(events.last().unwrap().is("run_completed"));

    mock.push(shell_call("c2", "true"));
    mock.push(Script::text("no container", 1));
    let (events, result) = run_with_tool(&service, "no-box").await;
    assert_eq!(result["is_error"], true, "{result}");
    assert!(
        result["output"].as_str().unwrap().contains("missing"),
        "the error names the container: {result}"
    );
    let last = events.last().unwrap();
    assert!(last.is("run_completed"), "{}", last.data);
    assert_eq!(last.payload()["status"], "committed");
}
