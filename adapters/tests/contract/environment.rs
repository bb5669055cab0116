//! `HostEnvironments` (the environment factory) on real directories and processes.

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

mod boundary {
    use std::path::PathBuf;

    use adapters::environment::{HostEnvironments, SandboxSettings};
    use adapters::protected::ProtectedPaths;
    use adapters::shell::sandbox::Rlimits;
    use ports::{
        EnvironmentError, EnvironmentFactory, EnvironmentSpec, SandboxMode, SandboxSpec, ShellError,
    };

    use super::request;

    /// A service directory with its data, and a workspace root beside it.
    fn service_dir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("data/sessions")).unwrap();
        std::fs::create_dir_all(root.join("workspace/project")).unwrap();
        std::fs::write(root.join(".env"), "X=1").unwrap();
        (dir, root)
    }

    fn factory(root: &std::path::Path) -> HostEnvironments {
        HostEnvironments::new()
            .with_workspace_root(root.join("workspace"))
            .with_protected(ProtectedPaths::new([root.join("data"), root.join(".env")]).unwrap())
    }

    fn spec(default_path: &str, allowed: &[&str]) -> EnvironmentSpec {
        EnvironmentSpec {
            default_path: default_path.into(),
            allowed_paths: allowed.iter().map(|p| (*p).to_owned()).collect(),
            ..EnvironmentSpec::default()
        }
    }

    #[tokio::test]
    async fn relative_paths_start_at_the_workspace_root() {
        let (_dir, root) = service_dir();
        std::fs::write(root.join("workspace/project/a.txt"), "a").unwrap();
        let env = factory(&root).open(&spec("project", &[])).await.unwrap();
        assert_eq!(
            env.workspace.working_dir(),
            root.join("workspace/project").display().to_string()
        );
        assert_eq!(
            env.workspace.read_capped("a.txt", 1024).await.unwrap(),
            b"a"
        );
    }

    #[tokio::test]
    async fn roots_reaching_protected_paths_are_refused_with_their_field() {
        let (_dir, root) = service_dir();
        let f = factory(&root);
        let data = root.join("data/sessions").display().to_string();
        for (s, field) in [
            (spec("..", &[]), "environment.default_path"),
            (
                spec(".", &["/nowhere", &data]),
                "environment.allowed_paths[1]",
            ),
            (spec(".", &["../.env"]), "environment.allowed_paths[0]"),
        ] {
            let problems = f.check_paths(&s).await;
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].field, field);
            let err = f.open(&s).await.err().unwrap();
            assert!(
                matches!(&err, EnvironmentError::Protected(p) if p.field == field),
                "{err:?}"
            );
        }
        assert!(f.check_paths(&spec("project", &[])).await.is_empty());
    }

    #[tokio::test]
    async fn protected_paths_inside_a_root_are_refused_by_the_workspace() {
        let (_dir, root) = service_dir();
        std::fs::write(root.join("workspace/secret.key"), "k").unwrap();
        let f = HostEnvironments::new()
            .with_workspace_root(root.join("workspace"))
            .with_protected(ProtectedPaths::new([root.join("workspace/secret.key")]).unwrap());
        // The root itself contains the protected file: refused as a whole.
        assert!(f.open(&spec(".", &[])).await.is_err());
        let env = f.open(&spec("project", &[])).await.unwrap();
        assert!(
            env.workspace
                .read_capped("../secret.key", 1024)
                .await
                .is_err()
        );
    }

    fn sandboxed(landlock: bool, required: bool) -> SandboxSettings {
        SandboxSettings {
            // Never started in these cases.
            helper: PathBuf::from("/nonexistent/agent-runtime"),
            read_paths: vec![],
            rlimits: Rlimits::default(),
            landlock,
            required,
            cgroups: None,
        }
    }

    #[tokio::test]
    async fn a_missing_landlock_warns_or_refuses_commands_when_required() {
        let (_dir, root) = service_dir();
        let s = spec("project", &[]);
        let env = factory(&root)
            .with_sandbox(sandboxed(false, false))
            .open(&s)
            .await
            .unwrap();
        let codes: Vec<&str> = env.warnings.iter().map(|w| w.code.as_str()).collect();
        assert_eq!(codes, ["sandbox_unavailable"]);

        let env = factory(&root)
            .with_sandbox(sandboxed(false, true))
            .open(&s)
            .await
            .unwrap();
        let cwd = env.workspace.shell_dir(".").await.unwrap();
        let err = env.shell.run(request("echo hi", cwd)).await.unwrap_err();
        assert!(
            matches!(&err, ShellError::Spawn(m) if m.contains("SANDBOX_REQUIRED")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn mode_off_warns_and_a_working_sandbox_is_silent() {
        let (_dir, root) = service_dir();
        let off = EnvironmentSpec {
            sandbox: SandboxSpec {
                mode: SandboxMode::Off,
                network: true,
            },
            ..spec("project", &[])
        };
        let env = factory(&root)
            .with_sandbox(sandboxed(true, false))
            .open(&off)
            .await
            .unwrap();
        assert_eq!(env.warnings.len(), 1);
        assert_eq!(env.warnings[0].code, "sandbox_off");
        let env = factory(&root)
            .with_sandbox(sandboxed(true, false))
            .open(&spec("project", &[]))
            .await
            .unwrap();
        assert!(env.warnings.is_empty());
    }
}
