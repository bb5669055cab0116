//! Docker mode through the real binary (spec 03, environment): with a fake `docker` on the
//! service's PATH (no engine on CI machines), a preset in docker mode runs its shell
//! commands as `docker exec -w <container_workdir> … <container_id>`, and a missing
//! container is a tool error the model reads, not a failed run.

use std::os::unix::fs::PermissionsExt;

use mock_llm::{MockLlm, Script};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::crash::Service;
use crate::support::{TOKEN, shell_call, text_input};

/// A `docker` that logs its argv and runs the exec'd command locally in the `-w` directory
/// with exactly the `-e` variables; container `missing` fails like the daemon.
fn write_shim(dir: &std::path::Path) {
    let script = format!(
        r#"#!/bin/bash
printf '%s\n' "$@" >> {log}
[ "$1" = exec ] || exit 2
shift
envs=()
wd=/
while [ $# -gt 0 ]; do
  case "$1" in
    -i) shift ;;
    -w) wd=$2; shift 2 ;;
    -e) envs+=("$2"); shift 2 ;;
    *) break ;;
  esac
done
container=$1
shift
if [ "$container" = missing ]; then
  echo "Error response from daemon: No such container: missing" >&2
  exit 1
fi
cd "$wd" || exit 126
exec /usr/bin/env -i "${{envs[@]}}" "$@"
"#,
        log = dir.join("docker.log").display()
    );
    let bin = dir.join("docker");
    std::fs::write(&bin, script).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_commands_run_through_docker_exec_and_a_missing_container_is_a_tool_error() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let shim = dir.path().join("shim");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&shim).unwrap();
    write_shim(&shim);
    let mock = MockLlm::start().await;
    let env: Vec<(String, String)> = [
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("AUTH_TOKEN", TOKEN.to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/runtime.db", dir.path().display()),
        ),
        (
            "STATE_STORE_PATH",
            dir.path().join("state").display().to_string(),
        ),
        ("OPENAI_API_KEY", "k".to_owned()),
        ("OPENAI_BASE_URL", mock.base_url()),
        ("PATH", format!("{}:/usr/bin:/bin", shim.display())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
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
    let events = service
        .sse(
            Method::POST,
            "/api/conversations/run",
            Some(json!({"preset_id": "in-box", "input": text_input("go")})),
        )
        .await
        .all()
        .await;
    let result = events
        .iter()
        .find(|e| e.is("tool_call_result"))
        .expect("a tool result");
    assert_eq!(result.payload()["is_error"], false, "{}", result.data);
    assert!(
        result.payload()["output"]
            .as_str()
            .unwrap()
            .contains(&work_path),
        "{}",
        result.data
    );
    assert_eq!(
        std::fs::read_to_string(work.join("marker.txt")).unwrap(),
        "inside\n"
    );
    let log = std::fs::read_to_string(shim.join("docker.log")).unwrap();
    let argv: Vec<&str> = log.lines().collect();
    assert_eq!(argv.first(), Some(&"exec"), "{log}");
    let w = argv.iter().position(|a| *a == "-w").expect("-w");
    assert_eq!(argv[w + 1], work_path, "{log}");
    assert!(argv.contains(&"box"), "{log}");
    assert!(
        !log.contains("OPENAI_API_KEY"),
        "no credential reaches the container: {log}"
    );
    assert!(events.last().unwrap().is("run_completed"));

    mock.push(shell_call("c2", "true"));
    mock.push(Script::text("no container", 1));
    let events = service
        .sse(
            Method::POST,
            "/api/conversations/run",
            Some(json!({"preset_id": "no-box", "input": text_input("go")})),
        )
        .await
        .all()
        .await;
    let result = events
        .iter()
        .find(|e| e.is("tool_call_result"))
        .expect("a tool result");
    assert_eq!(result.payload()["is_error"], true, "{}", result.data);
    assert!(
        result.payload()["output"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "the error names the container: {}",
        result.data
    );
    let last = events.last().unwrap();
    assert!(last.is("run_completed"), "{}", last.data);
    assert_eq!(last.payload()["status"], "committed");
}
