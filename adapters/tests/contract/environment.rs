//! `HostEnvironments` (the environment factory) on real directories and processes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step should fail the test"
)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use adapters::environment::HostEnvironments;
use ports::{EnvironmentError, EnvironmentFactory, EnvironmentSpec, ShellMode, ShellRequest};

fn request(command: &str, cwd: String) -> ShellRequest {
    ShellRequest {
        command: command.into(),
        cwd,
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        timeout: Duration::from_secs(10),
        output_cap: 10_000,
    }
}

#[tokio::test]
async fn local_mode_opens_the_working_directory_and_a_local_shell() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "hi").unwrap();
    let spec = EnvironmentSpec {
        default_path: dir.path().display().to_string(),
        ..EnvironmentSpec::default()
    };
    let env = HostEnvironments::new().open(&spec).await.unwrap();
    assert_eq!(
        env.workspace.read_capped("a.txt", 100).await.unwrap(),
        b"hi"
    );
    let cwd = env.workspace.shell_dir(".").await.unwrap();
    let out = env.shell.run(request("cat a.txt", cwd)).await.unwrap();
    assert_eq!(out.stdout, "hi");
}

#[tokio::test]
async fn a_missing_working_directory_or_container_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = EnvironmentSpec {
        default_path: dir.path().join("nope").display().to_string(),
        ..EnvironmentSpec::default()
    };
    let err = HostEnvironments::new().open(&missing).await.err().unwrap();
    assert!(
        matches!(&err, EnvironmentError::WorkingDir { path, .. } if path.ends_with("nope")),
        "{err:?}"
    );
    let docker = EnvironmentSpec {
        shell_mode: ShellMode::Docker,
        default_path: dir.path().display().to_string(),
        ..EnvironmentSpec::default()
    };
    let err = HostEnvironments::new().open(&docker).await.err().unwrap();
    assert!(matches!(err, EnvironmentError::MissingContainer), "{err:?}");
}

#[tokio::test]
async fn docker_mode_maps_the_working_directory_and_execs_into_the_container() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("docker");
    let log = dir.path().join("argv");
    std::fs::write(
        &bin,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\necho from-shim\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = EnvironmentSpec {
        shell_mode: ShellMode::Docker,
        container_id: Some("box".into()),
        default_path: dir.path().display().to_string(),
        ..EnvironmentSpec::default()
    };
    let env = HostEnvironments::new()
        .with_docker_bin(&bin)
        .open(&spec)
        .await
        .unwrap();
    let cwd = env.workspace.shell_dir(".").await.unwrap();
    assert_eq!(cwd, "/workspace", "the default container_workdir");
    let out = env.shell.run(request("true", cwd)).await.unwrap();
    assert_eq!(out.stdout.trim(), "from-shim");
    let argv = std::fs::read_to_string(&log).unwrap();
    let argv: Vec<&str> = argv.lines().collect();
    assert_eq!(argv[0], "exec");
    assert!(argv.contains(&"box"), "{argv:?}");
    assert!(
        argv.windows(2).any(|w| w == ["-w", "/workspace"]),
        "{argv:?}"
    );
}
