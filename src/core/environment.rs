//! A run's environment: what its tools act on, the workspace (files under the path policy),
//! the shell, with the variables every command gets, and the network (the downloader,
//! under the outbound policy). Built once per run by the run
//! engine from the preset's environment section ([`EnvironmentSpec`]) and what the
//! environment factory opened.

use std::sync::Arc;
use std::time::Duration;

use ports::{Downloader, EnvironmentSpec, Scraper, Shell, ShellMode, WebSearch, Workspace};

use super::redact::Redactor;

use super::limits::FileLimits;

/// Variables a command always gets (when the service has them).
const BASE_VARS: &[&str] = &["PATH", "HOME", "LANG"];

/// The agent's environment for one run.
pub struct Environment {
    pub workspace: Arc<dyn Workspace>,
    pub shell: Arc<dyn Shell>,
    /// What the web tools reach the network through: only what the outbound policy allows.
    pub downloader: Arc<dyn Downloader>,
    /// The search service the admin configured; without one `search` is not offered.
    pub search: Option<Arc<dyn WebSearch>>,
    /// The scraping service the admin configured; without one `scrape` is not offered.
    pub scraper: Option<Arc<dyn Scraper>>,
    /// Every variable a command gets: nothing else is inherited.
    pub command_vars: Vec<(String, String)>,
    pub limits: ShellLimits,
    /// Scrubs the service's secret values from tool output.
    pub redactor: Redactor,
    pub files: FileLimits,
}

/// Bounds on one shell command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellLimits {
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    /// Bytes kept of stdout and of stderr each.
    pub output_cap: usize,
}

impl Default for ShellLimits {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(120),
            max_timeout: Duration::from_secs(600),
            output_cap: 30_000,
        }
    }
}

/// The variables a command gets: PATH, HOME, LANG (local mode only: the host's values
/// mean nothing inside a container) and the preset's `env_allow` names, read through
/// `lookup` (the service's own variables). Names that hold credentials are never passed, even
/// when a preset asks: API keys must not reach a tool (spec 02).
pub fn command_vars(
    spec: &EnvironmentSpec,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut names: Vec<&str> = base_vars(spec.shell_mode).collect();
    for name in &spec.env_allow {
        if !is_credential(name) && !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .filter_map(|name| lookup(name).map(|value| (name.to_owned(), value)))
        .collect()
}

/// The variables every process of an environment gets: the host's PATH, HOME and LANG in
/// local mode; none in docker mode, where the host's values mean nothing.
pub fn base_vars(mode: ShellMode) -> impl Iterator<Item = &'static str> {
    let names: &'static [&'static str] = match mode {
        ShellMode::Local => BASE_VARS,
        ShellMode::Docker => &[],
    };
    names.iter().copied()
}

/// Whether a variable name is one of the service's secrets.
fn is_credential(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.ends_with("_API_KEY")
        || upper.ends_with("_SECRET_KEY")
        || upper.ends_with("_ACCESS_KEY")
        || upper.ends_with("_TOKEN")
        || matches!(
            upper.as_str(),
            "DATABASE_URL" | "REDIS_URL" | "GOOGLE_SEARCH_CX"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "PATH" => Some("/usr/bin".into()),
            "HOME" => Some("/root".into()),
            "OPENAI_API_KEY" => Some("sk-secret".into()),
            "AUTH_TOKEN" => Some("tok".into()),
            "EDITOR" => Some("vi".into()),
            _ => None,
        }
    }

    #[test]
    fn only_base_and_allowed_names_pass_and_never_a_credential() {
        let spec = EnvironmentSpec {
            env_allow: vec![
                "EDITOR".into(),
                "OPENAI_API_KEY".into(),
                "AUTH_TOKEN".into(),
                "MISSING".into(),
            ],
            ..Default::default()
        };
        let env = command_vars(&spec, lookup);
        assert_eq!(
            env,
            vec![
                ("PATH".to_owned(), "/usr/bin".to_owned()),
                ("HOME".to_owned(), "/root".to_owned()),
                ("EDITOR".to_owned(), "vi".to_owned()),
            ]
        );
    }

    #[test]
    fn docker_mode_passes_only_the_allowed_names() {
        let spec = EnvironmentSpec {
            shell_mode: ShellMode::Docker,
            container_id: Some("box".into()),
            env_allow: vec!["EDITOR".into(), "OPENAI_API_KEY".into()],
            ..Default::default()
        };
        assert_eq!(
            command_vars(&spec, lookup),
            vec![("EDITOR".to_owned(), "vi".to_owned())]
        );
    }
}
