//! [`HostEnvironments`]: environments on this host — the workspace on the local
//! filesystem, the shell as a local process or `docker exec` into the user's container.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ports::{
    EnvironmentError, EnvironmentFactory, EnvironmentSpec, OpenedEnvironment, Shell, ShellMode,
};

use crate::shell::{DockerShell, LocalShell};
use crate::workspace::LocalWorkspace;

/// Where the working directory is mounted in the container when a preset does not say.
pub const DEFAULT_CONTAINER_WORKDIR: &str = "/workspace";

/// Opens environments on this host; variables come from the service's own environment.
#[derive(Debug, Clone, Default)]
pub struct HostEnvironments {
    docker_bin: Option<PathBuf>,
}

impl HostEnvironments {
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this `docker` executable instead of the one on PATH.
    pub fn with_docker_bin(mut self, docker_bin: impl Into<PathBuf>) -> Self {
        self.docker_bin = Some(docker_bin.into());
        self
    }
}

#[async_trait]
impl EnvironmentFactory for HostEnvironments {
    async fn open(&self, spec: &EnvironmentSpec) -> Result<OpenedEnvironment, EnvironmentError> {
        let container_workdir = match spec.shell_mode {
            ShellMode::Local => None,
            ShellMode::Docker => Some(
                spec.container_workdir
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CONTAINER_WORKDIR.to_owned()),
            ),
        };
        let shell: Arc<dyn Shell> = match spec.shell_mode {
            ShellMode::Local => Arc::new(LocalShell::new()),
            ShellMode::Docker => {
                let id = spec
                    .container_id
                    .as_deref()
                    .ok_or(EnvironmentError::MissingContainer)?;
                let shell = DockerShell::new(id);
                Arc::new(match &self.docker_bin {
                    Some(bin) => shell.with_docker_bin(bin),
                    None => shell,
                })
            }
        };
        let allowed: Vec<PathBuf> = spec.allowed_paths.iter().map(PathBuf::from).collect();
        let default_path = spec.default_path.clone();
        let working_dir_error = |reason: String| EnvironmentError::WorkingDir {
            path: spec.default_path.clone(),
            reason,
        };
        // Resolving the paths touches the filesystem: off the async runtime.
        let workspace = tokio::task::spawn_blocking(move || {
            LocalWorkspace::new(Path::new(&default_path), &allowed, container_workdir)
        })
        .await
        .map_err(|e| working_dir_error(e.to_string()))?
        .map_err(|e| working_dir_error(e.to_string()))?;
        Ok(OpenedEnvironment {
            workspace: Arc::new(workspace),
            shell,
        })
    }

    fn host_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}
