//! Building real environments and calling tools by name.

use std::path::Path;
use std::sync::{Arc, Mutex};

use adapters::shell::LocalShell;
use adapters::workspace::LocalWorkspace;
use agent_runtime::core::environment::{Environment, ShellLimits, command_vars};
use agent_runtime::core::run::{CollectingSink, RunControl};
use agent_runtime::core::tools::{Scratch, ToolContext, Toolbox};
use ports::{EnvironmentSpec, ToolsetSpec};

/// Every built-in toolset.
pub fn all_tools() -> Toolbox {
    Toolbox::from_toolsets(
        &["core", "filesystem", "shell", "task", "context"]
            .iter()
            .map(|n| ToolsetSpec {
                toolset_name: (*n).into(),
                enabled: true,
                exclude_tools: vec![],
            })
            .collect::<Vec<_>>(),
        agent_runtime::core::tools::WebServices::default(),
    )
}

/// A local environment rooted at `dir`, with the service environment seen through `lookup`.
pub fn local_env(
    dir: &Path,
    spec: &EnvironmentSpec,
    lookup: impl Fn(&str) -> Option<String>,
) -> Arc<Environment> {
    Arc::new(Environment {
        workspace: Arc::new(LocalWorkspace::new(dir, &[], None).unwrap()),
        downloader: Arc::new(ports::mocks::MockDownloader::new()),
        search: None,
        scraper: None,
        shell: Arc::new(LocalShell::new()),
        command_vars: command_vars(spec, lookup),
        limits: ShellLimits::default(),
        redactor: Default::default(),
        files: Default::default(),
    })
}

/// Tools on a real workspace in a temporary directory.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub env: Arc<Environment>,
    pub scratch: Arc<Mutex<Scratch>>,
    pub control: RunControl,
    pub sink: CollectingSink,
    pub tools: Toolbox,
}

impl Bench {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = local_env(dir.path(), &EnvironmentSpec::default(), |n| {
            std::env::var(n).ok()
        });
        Self::with_env(dir, env)
    }

    /// A bench whose tools use `env`.
    pub fn with_env(dir: tempfile::TempDir, env: Arc<Environment>) -> Self {
        Self {
            dir,
            env,
            scratch: Arc::new(Mutex::new(Scratch::default())),
            control: RunControl::new(),
            sink: CollectingSink::default(),
            tools: all_tools(),
        }
    }

    /// What a tool call receives.
    pub fn ctx(&self) -> ToolContext<'_> {
        ToolContext {
            env: self.env.clone(),
            scratch: self.scratch.clone(),
            control: &self.control,
            sink: &self.sink,
        }
    }

    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    pub fn put(&self, rel: &str, contents: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// Calls a tool; `Ok(text)` or `Err(error text)`.
    pub async fn call(&self, tool: &str, args: serde_json::Value) -> Result<String, String> {
        let tool = self.tools.get(tool).expect("a built-in tool");
        tool.call(&self.ctx(), &args.to_string())
            .await
            .map(|o| o.content)
            .map_err(|e| e.0)
    }
}
