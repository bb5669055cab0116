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
}

/// An opened environment.
pub struct OpenedEnvironment {
    pub workspace: Arc<dyn Workspace>,
    pub shell: Arc<dyn Shell>,
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

    /// The value of a variable of the service's own environment, for the variables a preset
    /// lets its shell see (`env_allow`, PATH, HOME, LANG).
    fn host_var(&self, name: &str) -> Option<String>;
}
