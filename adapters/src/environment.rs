//! [`HostEnvironments`]: environments on this host — the workspace on the local
//! filesystem, the shell as a local process or `docker exec` into the user's container.
//!
//! Relative `default_path` and `allowed_paths` are taken from the workspace root
//! (`WORKSPACE_ROOT`), never from the service's own directory, and no root may overlap the
//! service's protected files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ports::{
    EnvironmentError, EnvironmentFactory, EnvironmentSpec, EnvironmentWarning, OpenedEnvironment,
    PathProblem, SandboxMode, Shell, ShellMode,
};
use tokio::sync::OnceCell;

use crate::protected::ProtectedPaths;
use crate::shell::sandbox::cgroup::CgroupRoot;
use crate::shell::sandbox::{Rlimits, Sandbox, SandboxPolicy};
use crate::shell::server::{ServerCommand, ServerConfinement, check_dir};
use crate::shell::{DockerShell, LocalShell};
use crate::workspace::LocalWorkspace;

/// Where the working directory is mounted in the container when a preset does not say.
pub const DEFAULT_CONTAINER_WORKDIR: &str = "/workspace";

/// Opens environments on this host; variables come from the service's own environment.
#[derive(Debug, Clone, Default)]
pub struct HostEnvironments {
    docker_bin: Option<PathBuf>,
    /// Where relative paths of a spec start; `None`: the current directory.
    workspace_root: Option<PathBuf>,
    protected: ProtectedPaths,
    /// `None`: plain local commands (tests of the bare mechanics).
    sandbox: Option<Arc<SandboxSettings>>,
}

/// How the service confines local commands (spec 02, security boundary).
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// The service binary, which runs the helper subcommand.
    pub helper: PathBuf,
    /// Read and execute: system directories plus `SANDBOX_READ_PATHS`.
    pub read_paths: Vec<PathBuf>,
    pub rlimits: Rlimits,
    /// Whether this kernel enforces Landlock.
    pub landlock: bool,
    /// `SANDBOX_REQUIRED`: refuse commands rather than run them without Landlock.
    pub required: bool,
    /// Where per-command `pids` cgroups go, when the machine has them.
    pub cgroups: Option<CgroupRoot>,
}

/// Read-only system directories of the sandbox (never `/tmp` or home directories).
pub const SYSTEM_READ_PATHS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/proc", "/sys",
];

/// The only device nodes a sandboxed command may open (never raw disks).
pub const SANDBOX_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/urandom",
    "/dev/random",
    "/dev/tty",
    "/dev/pts",
    "/dev/fd",
    "/dev/ptmx",
];

impl HostEnvironments {
    pub fn new() -> Self {
        Self::default()
    }

    /// Relative `default_path` / `allowed_paths` are taken from `root`.
    pub fn with_workspace_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.workspace_root = Some(root.into());
        self
    }

    /// Local commands run through the sandbox helper (see [`SandboxSettings`]).
    pub fn with_sandbox(mut self, settings: SandboxSettings) -> Self {
        self.sandbox = Some(Arc::new(settings));
        self
    }

    /// Paths no environment may reach or contain.
    pub fn with_protected(mut self, protected: ProtectedPaths) -> Self {
        self.protected = protected;
        self
    }

    /// A spec path as a host path: relative ones under the workspace root.
    fn host_path(&self, path: &str) -> PathBuf {
        match &self.workspace_root {
            Some(root) => root.join(path),
            None => PathBuf::from(path),
        }
    }

    /// Every root of `spec` with the field that names it.
    fn roots(&self, spec: &EnvironmentSpec) -> Vec<(String, PathBuf)> {
        let mut roots = vec![(
            "environment.default_path".to_owned(),
            self.host_path(&spec.default_path),
        )];
        roots.extend(spec.allowed_paths.iter().enumerate().map(|(i, path)| {
            (
                format!("environment.allowed_paths[{i}]"),
                self.host_path(path),
            )
        }));
        roots
    }

    /// The local shell of `spec`: sandboxed as the settings and the spec say, with a
    /// warning when it runs without Landlock.
    fn local_shell(
        &self,
        spec: &EnvironmentSpec,
        workspace: &LocalWorkspace,
        warnings: &mut Vec<EnvironmentWarning>,
    ) -> Result<LocalShell, EnvironmentError> {
        let shell = LocalShell::new();
        let Some(settings) = &self.sandbox else {
            return Ok(shell);
        };
        let landlock = match (spec.sandbox.mode, settings.landlock) {
            (SandboxMode::Workspace, true) => true,
            (mode, _) if settings.required => {
                let why = match mode {
                    SandboxMode::Off => "the preset turns the sandbox off",
                    SandboxMode::Workspace => "this kernel does not enforce Landlock",
                };
                return Ok(shell.refusing(format!(
                    "the shell sandbox is required (SANDBOX_REQUIRED=true) but {why}: \
                     no command can run"
                )));
            }
            (SandboxMode::Off, _) => {
                warnings.push(warning(
                    "sandbox_off",
                    "the shell runs without its sandbox (environment.sandbox.mode = off): \
                     commands can read and write whatever the service's user can",
                ));
                false
            }
            (SandboxMode::Workspace, false) => {
                warnings.push(warning(
                    "sandbox_unavailable",
                    "this kernel does not enforce Landlock: the shell runs without its \
                     filesystem and network sandbox",
                ));
                false
            }
        };
        let write_paths = workspace.policy().roots().to_vec();
        Ok(shell.sandboxed(Sandbox {
            helper: settings.helper.clone(),
            policy: SandboxPolicy {
                landlock,
                read_paths: settings.read_paths.clone(),
                write_paths,
                devices: SANDBOX_DEVICES.iter().map(PathBuf::from).collect(),
                network: spec.sandbox.network,
                rlimits: settings.rlimits,
                cgroup: None,
            },
            cgroups: settings.cgroups.clone(),
            temp_dir: OnceCell::new(),
        }))
    }

    /// Resolves the roots on disk (blocking) and reports those overlapping a protected path.
    fn problems(&self, spec: &EnvironmentSpec) -> Vec<PathProblem> {
        self.roots(spec)
            .into_iter()
            .filter_map(|(field, path)| {
                let hit = self.protected.overlapping(&path)?;
                Some(PathProblem {
                    field,
                    message: format!(
                        "{} reaches the service's own files ({}): choose a path that neither \
                         contains nor lies inside them",
                        path.display(),
                        hit.display()
                    ),
                })
            })
            .collect()
    }

    /// [`EnvironmentFactory::open`], blocking.
    fn open_now(&self, spec: &EnvironmentSpec) -> Result<OpenedEnvironment, EnvironmentError> {
        if let Some(problem) = self.problems(spec).into_iter().next() {
            return Err(EnvironmentError::Protected(problem));
        }
        let workspace = self.workspace(spec)?;
        let mut warnings = Vec::new();
        let shell: Arc<dyn Shell> = match spec.shell_mode {
            ShellMode::Local => Arc::new(self.local_shell(spec, &workspace, &mut warnings)?),
            ShellMode::Docker => Arc::new(self.docker_shell(spec)?),
        };
        Ok(OpenedEnvironment {
            workspace: Arc::new(workspace),
            shell,
            warnings,
        })
    }

    /// The workspace of `spec`, its roots resolved on disk.
    fn workspace(&self, spec: &EnvironmentSpec) -> Result<LocalWorkspace, EnvironmentError> {
        let container_workdir = match spec.shell_mode {
            ShellMode::Local => None,
            ShellMode::Docker => Some(
                spec.container_workdir
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CONTAINER_WORKDIR.to_owned()),
            ),
        };
        let allowed: Vec<PathBuf> = spec
            .allowed_paths
            .iter()
            .map(|p| self.host_path(p))
            .collect();
        LocalWorkspace::new(
            &self.host_path(&spec.default_path),
            &allowed,
            container_workdir,
        )
        .and_then(|ws| ws.with_protected(self.protected.paths().to_vec()))
        .map_err(|e| EnvironmentError::WorkingDir {
            path: spec.default_path.clone(),
            reason: e.to_string(),
        })
    }

    fn docker_shell(&self, spec: &EnvironmentSpec) -> Result<DockerShell, EnvironmentError> {
        let id = spec
            .container_id
            .as_deref()
            .ok_or(EnvironmentError::MissingContainer)?;
        let shell = DockerShell::new(id);
        Ok(match &self.docker_bin {
            Some(bin) => shell.with_docker_bin(bin),
            None => shell,
        })
    }

    /// How a server process of `spec` starts (a stdio MCP server): in its working directory
    /// (`cwd` resolved under the environment's path policy), confined like the shell but
    /// with the network allowed and no CPU-time limit, for it lives across runs. Blocking:
    /// it resolves the roots on disk.
    ///
    /// # Errors
    /// Why it cannot start: a path problem, a docker preset without a container, a required
    /// sandbox that is unavailable.
    pub fn server(
        &self,
        spec: &EnvironmentSpec,
        command: ServerCommand,
    ) -> Result<(ServerCommand, ServerConfinement), String> {
        if spec.shell_mode == ShellMode::Docker {
            return self.docker_server(spec, command);
        }
        if let Some(problem) = self.problems(spec).into_iter().next() {
            return Err(problem.message);
        }
        let workspace = self.workspace(spec).map_err(|e| e.to_string())?;
        let cwd = workspace
            .policy()
            .resolve(&command.cwd)
            .ok_or_else(|| format!("cwd {} is outside the environment's paths", command.cwd))?;
        check_dir(&cwd)?;
        let command = ServerCommand {
            cwd: cwd.to_string_lossy().into_owned(),
            ..command
        };
        let Some(settings) = &self.sandbox else {
            return Ok((command, ServerConfinement::None));
        };
        let landlock = match (spec.sandbox.mode, settings.landlock) {
            (SandboxMode::Workspace, true) => true,
            _ if settings.required => {
                return Err(
                    "the sandbox is required (SANDBOX_REQUIRED=true) and cannot confine \
                            this server"
                        .to_owned(),
                );
            }
            _ => false,
        };
        let policy = SandboxPolicy {
            landlock,
            read_paths: settings.read_paths.clone(),
            write_paths: workspace.policy().roots().to_vec(),
            devices: SANDBOX_DEVICES.iter().map(PathBuf::from).collect(),
            network: true,
            rlimits: Rlimits {
                cpu_seconds: u64::MAX,
                ..settings.rlimits
            },
            cgroup: None,
        };
        Ok((
            command,
            ServerConfinement::Sandboxed {
                helper: settings.helper.clone(),
                policy,
                cgroups: settings.cgroups.clone(),
            },
        ))
    }

    fn docker_server(
        &self,
        spec: &EnvironmentSpec,
        command: ServerCommand,
    ) -> Result<(ServerCommand, ServerConfinement), String> {
        let container_id = spec
            .container_id
            .clone()
            .ok_or_else(|| EnvironmentError::MissingContainer.to_string())?;
        let workdir = spec
            .container_workdir
            .as_deref()
            .unwrap_or(DEFAULT_CONTAINER_WORKDIR);
        let cwd = if command.cwd == "." {
            workdir.to_owned()
        } else {
            Path::new(workdir)
                .join(&command.cwd)
                .to_string_lossy()
                .into_owned()
        };
        Ok((
            ServerCommand { cwd, ..command },
            ServerConfinement::Docker {
                docker_bin: self
                    .docker_bin
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("docker")),
                container_id,
            },
        ))
    }

    /// Uses this `docker` executable instead of the one on PATH.
    pub fn with_docker_bin(mut self, docker_bin: impl Into<PathBuf>) -> Self {
        self.docker_bin = Some(docker_bin.into());
        self
    }
}

#[async_trait]
impl EnvironmentFactory for HostEnvironments {
    /// Everything here touches the filesystem (resolving the roots, the protected-path
    /// check): one trip off the async runtime for all of it.
    async fn open(&self, spec: &EnvironmentSpec) -> Result<OpenedEnvironment, EnvironmentError> {
        let this = self.clone();
        let spec = spec.clone();
        let default_path = spec.default_path.clone();
        tokio::task::spawn_blocking(move || this.open_now(&spec))
            .await
            .map_err(|e| EnvironmentError::WorkingDir {
                path: default_path,
                reason: e.to_string(),
            })?
    }

    async fn check_paths(&self, spec: &EnvironmentSpec) -> Vec<PathProblem> {
        let this = self.clone();
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || this.problems(&spec))
            .await
            .unwrap_or_else(|e| {
                vec![PathProblem {
                    field: "environment".to_owned(),
                    message: format!("the paths could not be checked: {e}"),
                }]
            })
    }

    fn host_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

fn warning(code: &str, message: &str) -> EnvironmentWarning {
    EnvironmentWarning {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}
