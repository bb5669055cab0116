//! Opening an agent's environment: the workspace (files under the path policy) and the
//! shell (local process or `docker exec`) a preset's environment section describes.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{EnvironmentSpec, Shell, Workspace};

/// Why an environment cannot be opened; the caller reports it as a configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    /// The working directory (`default_path`) does not exist or is not a directory.
    #[error("working directory {path}: {reason}")]
    WorkingDir { path: String, reason: String },
    /// Docker mode without a container id.
    #[error("docker mode needs a container_id")]
    MissingContainer,
    /// A path of the spec reaches the service's own files (see [`PathProblem`]).
    #[error("{}: {}", .0.field, .0.message)]
    Protected(PathProblem),
}

/// A path of an environment spec that can never be allowed: it contains, or lies inside,
/// one of the service's own files (its data, database, `.env`, `PROTECTED_PATHS`). A
/// sandbox can only allow trees, never carve a file out of one, so such a spec is refused
/// as a whole instead of being trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathProblem {
    /// The spec field, e.g. `environment.allowed_paths[1]`.
    pub field: String,
    pub message: String,
}

/// An opened environment.
pub struct OpenedEnvironment {
    pub workspace: Arc<dyn Workspace>,
    pub shell: Arc<dyn Shell>,
    /// What the run should be told about this environment (e.g. the shell runs without its
    /// sandbox); each becomes a `warning` event.
    pub warnings: Vec<EnvironmentWarning>,
}

/// Something a run should know about its environment that does not stop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentWarning {
    /// Stable, e.g. `sandbox_off`, `sandbox_unavailable`.
    pub code: String,
    pub message: String,
}

/// Builds environments from their description. Opening checks the working directory and
/// prepares handles; a missing container shows up later, as a tool error on the first
/// command.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EnvironmentFactory: Send + Sync {
    /// # Errors
    /// See [`EnvironmentError`].
    async fn open(&self, spec: &EnvironmentSpec) -> Result<OpenedEnvironment, EnvironmentError>;

    /// The paths of `spec` that reach the service's own files; empty when none does. Called
    /// when a preset or a run's override is validated, so the refusal is a 422 naming the
    /// field rather than a failed run. `open` MUST refuse the same specs.
    async fn check_paths(&self, spec: &EnvironmentSpec) -> Vec<PathProblem>;

    /// The value of a variable of the service's own environment, for the variables a preset
    /// lets its shell see (`env_allow`, PATH, HOME, LANG).
    fn host_var(&self, name: &str) -> Option<String>;
}
