//! Agent presets: the stored, secret-free recipe for an agent (spec 02).

use serde::{Deserialize, Serialize};

use super::{PresetId, Timestamp};

/// An agent preset as stored in SQL. Holds no secrets: credentials come from the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    /// Slug, primary key.
    pub preset_id: PresetId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub model: ModelSettings,
    /// A minijinja template rendered at run start.
    #[serde(default)]
    pub system_prompt: String,
    #[serde(default)]
    pub toolsets: Vec<ToolsetSpec>,
    #[serde(default)]
    pub environment: EnvironmentSpec,
    #[serde(default)]
    pub subagents: SubagentSpec,
    #[serde(default)]
    pub tool_config: ToolConfig,
    /// Caps on each run of this preset.
    #[serde(default)]
    pub limits: RunLimits,
    /// MCP servers whose tools the agent gets (no toolset entry needed).
    #[serde(default)]
    pub mcp_servers: Vec<McpServerSpec>,
    #[serde(default)]
    pub is_default: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Preset {
    /// A preset calling `model` with every other field at its default (no tools, an empty
    /// prompt, not the default preset), created now.
    pub fn new(
        preset_id: impl Into<PresetId>,
        name: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        let at = super::now();
        Self {
            preset_id: preset_id.into(),
            name: name.into(),
            description: None,
            model: ModelSettings {
                name: model.into(),
                ..ModelSettings::default()
            },
            system_prompt: String::new(),
            toolsets: Vec::new(),
            environment: EnvironmentSpec::default(),
            subagents: SubagentSpec::default(),
            tool_config: ToolConfig::default(),
            limits: RunLimits::default(),
            mcp_servers: Vec::new(),
            is_default: false,
            created_at: at,
            updated_at: at,
        }
    }
}

/// Which model to call and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSettings {
    /// `provider:model`, `gateway@provider:model` or a built-in `test:` model.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The cap on one response's output tokens (not a budget of the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Extended thinking, sent whenever set: the user chose a model that has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingSettings>,
    /// How hard a reasoning model thinks, sent whenever set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Prompt-cache breakpoints (Anthropic's `cache_control`) on the system prompt, the
    /// tool list and the latest turns: a long run then pays full price for each prefix
    /// once.
    #[serde(default = "yes")]
    pub prompt_cache: bool,
    /// Models tried in order when this one keeps failing (spec 03, failover).
    #[serde(default)]
    pub fallbacks: Vec<String>,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            name: String::new(),
            context_window: None,
            temperature: None,
            max_tokens: None,
            thinking: None,
            reasoning_effort: None,
            prompt_cache: true,
            fallbacks: Vec::new(),
        }
    }
}

/// Extended thinking: how many tokens the model may think before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThinkingSettings {
    pub budget_tokens: u32,
}

/// The effort a reasoning model spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningEffort {
    Low,
    Medium,
    High,
}

impl ReasoningEffort {
    /// The wire spelling, the same for every provider.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// Caps on one run; `None`: no cap of the preset's own (the service's default applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunLimits {
    /// Model requests, compaction summaries included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_requests: Option<u64>,
    /// Input plus output tokens over the run, its subagents' included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_tokens: Option<u64>,
    /// Wall-clock seconds from the run's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_secs: Option<u64>,
    /// Tool calls the agent makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_calls: Option<u64>,
}

impl RunLimits {
    /// Each cap of `self`, else the one of `defaults`.
    pub fn or(self, defaults: RunLimits) -> RunLimits {
        RunLimits {
            max_model_requests: self.max_model_requests.or(defaults.max_model_requests),
            max_total_tokens: self.max_total_tokens.or(defaults.max_total_tokens),
            max_duration_secs: self.max_duration_secs.or(defaults.max_duration_secs),
            max_tool_calls: self.max_tool_calls.or(defaults.max_tool_calls),
        }
    }

    /// The cap on `limit`.
    pub fn get(&self, limit: Limit) -> Option<u64> {
        match limit {
            Limit::MaxModelRequests => self.max_model_requests,
            Limit::MaxTotalTokens => self.max_total_tokens,
            Limit::MaxDurationSecs => self.max_duration_secs,
            Limit::MaxToolCalls => self.max_tool_calls,
        }
    }

    /// Sets the cap on `limit`.
    pub fn set(&mut self, limit: Limit, value: Option<u64>) {
        let field = match limit {
            Limit::MaxModelRequests => &mut self.max_model_requests,
            Limit::MaxTotalTokens => &mut self.max_total_tokens,
            Limit::MaxDurationSecs => &mut self.max_duration_secs,
            Limit::MaxToolCalls => &mut self.max_tool_calls,
        };
        *field = value;
    }
}

/// Which cap of [`RunLimits`] a run reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    MaxModelRequests,
    MaxTotalTokens,
    MaxDurationSecs,
    MaxToolCalls,
}

impl Limit {
    pub const ALL: [Limit; 4] = [
        Limit::MaxModelRequests,
        Limit::MaxTotalTokens,
        Limit::MaxDurationSecs,
        Limit::MaxToolCalls,
    ];

    /// The field's name in `limits`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxModelRequests => "max_model_requests",
            Self::MaxTotalTokens => "max_total_tokens",
            Self::MaxDurationSecs => "max_duration_secs",
            Self::MaxToolCalls => "max_tool_calls",
        }
    }
}

/// One toolset switched on or off, minus some of its tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolsetSpec {
    pub toolset_name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub exclude_tools: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Where the shell runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShellMode {
    #[default]
    Local,
    Docker,
}

/// The agent's environment: shell mode and the paths it may touch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentSpec {
    #[serde(default)]
    pub shell_mode: ShellMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_workdir: Option<String>,
    #[serde(default = "dot")]
    pub default_path: String,
    #[serde(default)]
    pub allowed_paths: Vec<String>,
    /// Names of service environment variables the shell may see besides PATH, HOME, LANG.
    #[serde(default)]
    pub env_allow: Vec<String>,
    /// How local shell commands are confined.
    #[serde(default)]
    pub sandbox: SandboxSpec,
}

/// The shell sandbox of a preset (local mode; a docker container is its own boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    #[serde(default)]
    pub mode: SandboxMode,
    /// TCP connect and bind allowed (denied only where the kernel can, Landlock ABI 4).
    #[serde(default = "yes")]
    pub network: bool,
}

impl Default for SandboxSpec {
    fn default() -> Self {
        Self {
            mode: SandboxMode::Workspace,
            network: true,
        }
    }
}

/// Whether the Landlock sandbox confines the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// Read-only system directories, read-write workspace roots and a per-run temp dir.
    #[default]
    Workspace,
    /// No filesystem or network rules; each run says so with a `warning` event.
    Off,
}

fn dot() -> String {
    ".".to_owned()
}

impl Default for EnvironmentSpec {
    fn default() -> Self {
        Self {
            shell_mode: ShellMode::Local,
            container_id: None,
            container_workdir: None,
            default_path: dot(),
            allowed_paths: Vec::new(),
            env_allow: Vec::new(),
            sandbox: SandboxSpec::default(),
        }
    }
}

/// Subagents this preset may call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SubagentSpec {
    #[serde(default)]
    pub include_builtin: bool,
    #[serde(default)]
    pub async_enabled: bool,
    #[serde(default)]
    pub refs: Vec<SubagentRef>,
}

/// A named subagent backed by another preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubagentRef {
    pub preset_id: PresetId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
}

/// Per-tool behaviour.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolConfig {
    /// Tools whose calls wait for a human's approval (spec 05).
    #[serde(default)]
    pub require_approval: Vec<String>,
    /// Clients of the OpenAI-compatible surface get the agent's tool activity and
    /// thinking as `reasoning_content`, as if they had sent `x-show-tools: true`.
    #[serde(default)]
    pub show_activity: bool,
}

/// An MCP server a preset lists: its tools are offered as `<name>__<tool>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServerSpec {
    /// Prefix of its tools' names; unique within the preset.
    pub name: String,
    pub transport: McpTransport,
    #[serde(default)]
    pub tools: McpToolFilter,
    /// Offer `<name>__search_tools` and `<name>__call_tool` instead of every tool: a
    /// constant tool list for large servers, so prompt caching stays effective.
    #[serde(default)]
    pub proxy: bool,
    /// Bound on one tool call; `None`: [`MCP_DEFAULT_TIMEOUT_SECS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
}

/// Bound on one MCP tool call when the preset sets none.
pub const MCP_DEFAULT_TIMEOUT_SECS: u32 = 120;

/// How the service talks to an MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpTransport {
    /// A long-lived process of the preset's environment, spoken to over its stdin/stdout.
    Stdio(StdioServer),
    /// A streamable-HTTP endpoint.
    Http(HttpServer),
}

/// A server started as a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioServer {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Names of service environment variables the server sees (never the service's own
    /// credentials).
    #[serde(default)]
    pub env_allow: Vec<String>,
    /// Working directory, under the environment's path policy; `None`: its `default_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// A server reached over streamable HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpServer {
    pub url: String,
    /// Header name → name of the service environment variable holding its value: secrets
    /// stay in the service's environment, never in the database.
    #[serde(default)]
    pub headers_from_env: std::collections::BTreeMap<String, String>,
}

/// Which of a server's tools are offered: `include` (all when absent) minus `exclude`, by
/// the server's own tool names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct McpToolFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl McpToolFilter {
    pub fn admits(&self, tool: &str) -> bool {
        self.include
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == tool))
            && !self.exclude.iter().any(|n| n == tool)
    }
}

/// A partial update: `None` leaves the field unchanged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PresetPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub model: Option<ModelSettings>,
    pub system_prompt: Option<String>,
    pub toolsets: Option<Vec<ToolsetSpec>>,
    pub environment: Option<EnvironmentSpec>,
    pub subagents: Option<SubagentSpec>,
    pub tool_config: Option<ToolConfig>,
    pub limits: Option<RunLimits>,
    pub mcp_servers: Option<Vec<McpServerSpec>>,
    pub is_default: Option<bool>,
}

impl PresetPatch {
    /// Applies the patch, leaving absent fields as they were. `updated_at` is the caller's.
    pub fn apply(self, preset: &mut Preset) {
        let Self {
            name,
            description,
            model,
            system_prompt,
            toolsets,
            environment,
            subagents,
            tool_config,
            limits,
            mcp_servers,
            is_default,
        } = self;
        if let Some(v) = name {
            preset.name = v;
        }
        if let Some(v) = description {
            preset.description = v;
        }
        if let Some(v) = model {
            preset.model = v;
        }
        if let Some(v) = limits {
            preset.limits = v;
        }
        if let Some(v) = system_prompt {
            preset.system_prompt = v;
        }
        if let Some(v) = toolsets {
            preset.toolsets = v;
        }
        if let Some(v) = environment {
            preset.environment = v;
        }
        if let Some(v) = subagents {
            preset.subagents = v;
        }
        if let Some(v) = tool_config {
            preset.tool_config = v;
        }
        if let Some(v) = mcp_servers {
            preset.mcp_servers = v;
        }
        if let Some(v) = is_default {
            preset.is_default = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_changes_only_given_fields() {
        let now = crate::now();
        let mut p = Preset {
            preset_id: "p".into(),
            name: "old".into(),
            description: Some("d".into()),
            model: ModelSettings {
                name: "test:echo".into(),
                ..Default::default()
            },
            system_prompt: "s".into(),
            toolsets: vec![],
            environment: EnvironmentSpec::default(),
            subagents: SubagentSpec::default(),
            tool_config: ToolConfig::default(),
            limits: RunLimits::default(),
            mcp_servers: Vec::new(),
            is_default: false,
            created_at: now,
            updated_at: now,
        };
        let before = p.clone();
        PresetPatch {
            name: Some("new".into()),
            description: Some(None),
            ..Default::default()
        }
        .apply(&mut p);
        assert_eq!(p.name, "new");
        assert_eq!(p.description, None);
        assert_eq!(p.model, before.model);
        assert_eq!(p.system_prompt, before.system_prompt);
    }
}
