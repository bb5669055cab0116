//! Preset DTOs. Request types make every optional field optional (absent or null);
//! response types always carry the whole preset.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object, types::MaybeUndefined};

use super::capped::{Description, Ident, Instruction, Name, PathText, Template};
use super::mcp::{McpServer, servers_into_domain};
use super::strict::no_null;
use super::text::{strings, texts};
use ports::{EnvironmentSpec, PresetPatch, SandboxSpec, SubagentSpec, ToolsetSpec};

fn yes() -> bool {
    true
}

fn dot() -> PathText {
    ".".to_owned().into()
}

/// Which model a preset calls and with which settings.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct ModelSettings {
    /// `provider:model`, `gateway@provider:model`, or a built-in `test:` model such as `test:echo`.
    pub name: Ident,
    /// Context window in tokens; compaction starts near 80 % of it.
    #[oai(
        nullable,
        validator(minimum(value = "1"), maximum(value = "4294967295"))
    )]
    pub context_window: Option<u32>,
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "2")))]
    pub temperature: Option<f64>,
    /// The cap on one response's output tokens (not a budget of the run: see `limits`).
    #[oai(
        nullable,
        validator(minimum(value = "1"), maximum(value = "4294967295"))
    )]
    pub max_tokens: Option<u32>,
    #[oai(deserialize_with = "no_null")]
    pub thinking: Option<Thinking>,
    #[oai(deserialize_with = "no_null")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Prompt-cache breakpoints (Anthropic `cache_control`) on the system prompt, the tool
    /// list and the latest turns. Default true.
    #[oai(default = "yes")]
    pub prompt_cache: bool,
    /// Models tried in order after this one's retries are spent on connection errors,
    /// 5xx or 429 (or while its endpoint's circuit breaker is open).
    #[oai(default)]
    pub fallbacks: Vec<Ident>,
}

/// Extended thinking: the tokens the model may think before answering. Sent as
/// Anthropic's `thinking` (OpenAI-compatible gateways get the same object) whenever set: a
/// model without it answers with its own error, which fails the run.
#[derive(Object, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thinking {
    #[oai(validator(minimum(value = "1"), maximum(value = "4294967295")))]
    pub budget_tokens: u32,
}

/// How hard a reasoning model thinks: OpenAI's `reasoning_effort`, Anthropic's
/// `output_config.effort`. Sent whenever set.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ReasoningEffort {
    Low,
    Medium,
    High,
}

impl From<ReasoningEffort> for ports::ReasoningEffort {
    fn from(e: ReasoningEffort) -> Self {
        match e {
            ReasoningEffort::Low => Self::Low,
            ReasoningEffort::Medium => Self::Medium,
            ReasoningEffort::High => Self::High,
        }
    }
}

impl From<ports::ReasoningEffort> for ReasoningEffort {
    fn from(e: ports::ReasoningEffort) -> Self {
        match e {
            ports::ReasoningEffort::Low => Self::Low,
            ports::ReasoningEffort::Medium => Self::Medium,
            ports::ReasoningEffort::High => Self::High,
        }
    }
}

impl From<Thinking> for ports::ThinkingSettings {
    fn from(t: Thinking) -> Self {
        Self {
            budget_tokens: t.budget_tokens,
        }
    }
}

impl From<ports::ThinkingSettings> for Thinking {
    fn from(t: ports::ThinkingSettings) -> Self {
        Self {
            budget_tokens: t.budget_tokens,
        }
    }
}

/// A toolset switched on, minus some of its tools.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct Toolset {
    /// core, filesystem, shell, web, task, context, subagent, media or document.
    pub toolset_name: Ident,
    #[oai(default = "yes")]
    pub enabled: bool,
    #[oai(default)]
    pub exclude_tools: Vec<Ident>,
}

/// Where the agent's shell runs.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ShellMode {
    Local,
    Docker,
}

/// How local shell commands are confined: `workspace` (the default where the kernel has
/// Landlock: read-only system directories, read-write `default_path`, `allowed_paths` and a
/// per-run temp dir) or `off` (no filesystem or network rules; each run gets a `warning`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum SandboxMode {
    Workspace,
    Off,
}

/// The shell sandbox: `mode` (default `workspace`) and `network` (default true; false denies
/// TCP connect and bind).
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct Sandbox {
    #[oai(deserialize_with = "no_null")]
    pub mode: Option<SandboxMode>,
    #[oai(default = "yes")]
    pub network: bool,
}

/// The agent's environment: `shell_mode` (`local`, the default, or `docker`), the paths
/// it may touch (relative ones are taken from the service's `WORKSPACE_ROOT`; none may reach
/// the service's own files) and the shell `sandbox`.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct Environment {
    #[oai(deserialize_with = "no_null")]
    pub shell_mode: Option<ShellMode>,
    /// Required in docker mode: the running container to `docker exec` into.
    #[oai(nullable)]
    pub container_id: Option<Ident>,
    #[oai(nullable)]
    pub container_workdir: Option<PathText>,
    #[oai(default = "dot")]
    pub default_path: PathText,
    #[oai(default)]
    pub allowed_paths: Vec<PathText>,
    /// Service environment variables the shell may see besides PATH, HOME and LANG.
    #[oai(default)]
    pub env_allow: Vec<Ident>,
    #[oai(deserialize_with = "no_null")]
    pub sandbox: Option<Sandbox>,
}

/// A named subagent backed by another preset.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct SubagentRef {
    pub preset_id: Ident,
    pub name: Ident,
    #[oai(default)]
    pub description: Description,
    /// Added to the parent's system prompt.
    #[oai(nullable)]
    pub instruction: Option<Instruction>,
}

/// Subagents a preset may call.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct Subagents {
    #[oai(default)]
    pub include_builtin: bool,
    #[oai(default)]
    pub async_enabled: bool,
    #[oai(default)]
    pub refs: Vec<SubagentRef>,
}

/// Per-tool behaviour.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ToolConfig {
    /// Tools whose calls wait for a human's approval.
    #[oai(default)]
    pub require_approval: Vec<Ident>,
    /// Clients of the OpenAI-compatible `/v1` get the agent's tool activity and thinking
    /// as `reasoning_content` (as with the `x-show-tools: true` header).
    #[oai(default)]
    pub show_activity: bool,
}

/// Caps on each run of a preset; an absent cap is the service's default (50 model
/// requests; no token, time or tool-call cap). A run's `config_override.limits` may lower
/// them, never raise them. Each cap warns at 80 % (`warning` event `limit_near`); at the cap
/// the run ends committed with `stop_reason: limit_reached` and `limit` naming it.
#[derive(Object, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[oai(skip_serializing_if_is_none)]
pub struct RunLimits {
    /// Model requests, compaction summaries included.
    #[oai(nullable, validator(minimum(value = "1")))]
    pub max_model_requests: Option<u64>,
    /// Input plus output tokens over the run, its subagents' included (not
    /// `model.max_tokens`, the cap on one response).
    #[oai(nullable, validator(minimum(value = "1")))]
    pub max_total_tokens: Option<u64>,
    /// Wall-clock seconds from the run's start; reaching it stops even a running tool.
    #[oai(nullable, validator(minimum(value = "1")))]
    pub max_duration_secs: Option<u64>,
    /// Tool calls the agent makes; calls past it are answered "not run".
    #[oai(nullable, validator(minimum(value = "1")))]
    pub max_tool_calls: Option<u64>,
}

impl From<RunLimits> for ports::RunLimits {
    fn from(l: RunLimits) -> Self {
        Self {
            max_model_requests: l.max_model_requests,
            max_total_tokens: l.max_total_tokens,
            max_duration_secs: l.max_duration_secs,
            max_tool_calls: l.max_tool_calls,
        }
    }
}

impl From<ports::RunLimits> for RunLimits {
    fn from(l: ports::RunLimits) -> Self {
        Self {
            max_model_requests: l.max_model_requests,
            max_total_tokens: l.max_total_tokens,
            max_duration_secs: l.max_duration_secs,
            max_tool_calls: l.max_tool_calls,
        }
    }
}

/// An agent preset.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct Preset {
    pub preset_id: Ident,
    pub name: Name,
    pub description: Option<Description>,
    pub model: ModelSettings,
    /// A minijinja template.
    pub system_prompt: Template,
    pub toolsets: Vec<Toolset>,
    pub environment: Environment,
    pub subagents: Subagents,
    pub tool_config: ToolConfig,
    pub limits: RunLimits,
    pub mcp_servers: Vec<McpServer>,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of `presets_create`: a whole preset; omitted parts take their defaults.
#[derive(Object, Debug, Clone)]
#[oai(example, skip_serializing_if_is_none)]
pub struct PresetCreateRequest {
    /// Slug: a-z, 0-9, '-' and '_'.
    pub preset_id: Ident,
    pub name: Name,
    #[oai(nullable)]
    pub description: Option<Description>,
    pub model: ModelSettings,
    #[oai(nullable)]
    pub system_prompt: Option<Template>,
    #[oai(nullable)]
    pub toolsets: Option<Vec<Toolset>>,
    #[oai(deserialize_with = "no_null")]
    pub environment: Option<Environment>,
    #[oai(deserialize_with = "no_null")]
    pub subagents: Option<Subagents>,
    #[oai(deserialize_with = "no_null")]
    pub tool_config: Option<ToolConfig>,
    #[oai(deserialize_with = "no_null")]
    pub limits: Option<RunLimits>,
    /// MCP servers whose tools the agent gets.
    #[oai(nullable)]
    pub mcp_servers: Option<Vec<McpServer>>,
    #[oai(nullable)]
    pub is_default: Option<bool>,
}

/// Body of `presets_update`: only the given fields change; `description: null` clears it.
#[derive(Object, Debug, Clone, Default)]
#[oai(example, skip_serializing_if_is_none)]
pub struct PresetUpdateRequest {
    #[oai(nullable)]
    pub name: Option<Name>,
    #[oai(nullable)]
    pub description: MaybeUndefined<Description>,
    #[oai(deserialize_with = "no_null")]
    pub model: Option<ModelSettings>,
    #[oai(nullable)]
    pub system_prompt: Option<Template>,
    #[oai(nullable)]
    pub toolsets: Option<Vec<Toolset>>,
    #[oai(deserialize_with = "no_null")]
    pub environment: Option<Environment>,
    #[oai(deserialize_with = "no_null")]
    pub subagents: Option<Subagents>,
    #[oai(deserialize_with = "no_null")]
    pub tool_config: Option<ToolConfig>,
    #[oai(deserialize_with = "no_null")]
    pub limits: Option<RunLimits>,
    /// MCP servers whose tools the agent gets.
    #[oai(nullable)]
    pub mcp_servers: Option<Vec<McpServer>>,
    #[oai(nullable)]
    pub is_default: Option<bool>,
}

impl From<ports::ModelSettings> for ModelSettings {
    fn from(m: ports::ModelSettings) -> Self {
        Self {
            name: m.name.into(),
            context_window: m.context_window,
            temperature: m.temperature,
            max_tokens: m.max_tokens,
            thinking: m.thinking.map(Into::into),
            reasoning_effort: m.reasoning_effort.map(Into::into),
            prompt_cache: m.prompt_cache,
            fallbacks: m.fallbacks.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ModelSettings> for ports::ModelSettings {
    fn from(m: ModelSettings) -> Self {
        Self {
            name: m.name.into(),
            context_window: m.context_window,
            temperature: m.temperature,
            max_tokens: m.max_tokens,
            thinking: m.thinking.map(Into::into),
            reasoning_effort: m.reasoning_effort.map(Into::into),
            prompt_cache: m.prompt_cache,
            fallbacks: m.fallbacks.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ToolsetSpec> for Toolset {
    fn from(t: ToolsetSpec) -> Self {
        Self {
            toolset_name: t.toolset_name.into(),
            enabled: t.enabled,
            exclude_tools: texts(t.exclude_tools),
        }
    }
}

impl From<Toolset> for ToolsetSpec {
    fn from(t: Toolset) -> Self {
        Self {
            toolset_name: t.toolset_name.into(),
            enabled: t.enabled,
            exclude_tools: strings(t.exclude_tools),
        }
    }
}

impl From<ports::ShellMode> for ShellMode {
    fn from(m: ports::ShellMode) -> Self {
        match m {
            ports::ShellMode::Local => Self::Local,
            ports::ShellMode::Docker => Self::Docker,
        }
    }
}

impl From<ShellMode> for ports::ShellMode {
    fn from(m: ShellMode) -> Self {
        match m {
            ShellMode::Local => Self::Local,
            ShellMode::Docker => Self::Docker,
        }
    }
}

impl From<EnvironmentSpec> for Environment {
    fn from(e: EnvironmentSpec) -> Self {
        Self {
            shell_mode: Some(e.shell_mode.into()),
            container_id: e.container_id.map(Into::into),
            container_workdir: e.container_workdir.map(Into::into),
            default_path: e.default_path.into(),
            allowed_paths: texts(e.allowed_paths),
            env_allow: texts(e.env_allow),
            sandbox: Some(e.sandbox.into()),
        }
    }
}

impl From<SandboxSpec> for Sandbox {
    fn from(s: SandboxSpec) -> Self {
        Self {
            mode: Some(match s.mode {
                ports::SandboxMode::Workspace => SandboxMode::Workspace,
                ports::SandboxMode::Off => SandboxMode::Off,
            }),
            network: s.network,
        }
    }
}

impl From<Sandbox> for SandboxSpec {
    fn from(s: Sandbox) -> Self {
        Self {
            mode: match s.mode {
                None | Some(SandboxMode::Workspace) => ports::SandboxMode::Workspace,
                Some(SandboxMode::Off) => ports::SandboxMode::Off,
            },
            network: s.network,
        }
    }
}

impl From<Environment> for EnvironmentSpec {
    fn from(e: Environment) -> Self {
        Self {
            shell_mode: e.shell_mode.map(Into::into).unwrap_or_default(),
            container_id: e.container_id.map(Into::into),
            container_workdir: e.container_workdir.map(Into::into),
            default_path: e.default_path.into(),
            allowed_paths: strings(e.allowed_paths),
            env_allow: strings(e.env_allow),
            sandbox: e.sandbox.map(Into::into).unwrap_or_default(),
        }
    }
}

impl From<ports::SubagentRef> for SubagentRef {
    fn from(r: ports::SubagentRef) -> Self {
        Self {
            preset_id: r.preset_id.into(),
            name: r.name.into(),
            description: r.description.into(),
            instruction: r.instruction.map(Into::into),
        }
    }
}

impl From<SubagentRef> for ports::SubagentRef {
    fn from(r: SubagentRef) -> Self {
        Self {
            preset_id: r.preset_id.into(),
            name: r.name.into(),
            description: r.description.into(),
            instruction: r.instruction.map(Into::into),
        }
    }
}

impl From<SubagentSpec> for Subagents {
    fn from(s: SubagentSpec) -> Self {
        Self {
            include_builtin: s.include_builtin,
            async_enabled: s.async_enabled,
            refs: s.refs.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Subagents> for SubagentSpec {
    fn from(s: Subagents) -> Self {
        Self {
            include_builtin: s.include_builtin,
            async_enabled: s.async_enabled,
            refs: s.refs.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ports::ToolConfig> for ToolConfig {
    fn from(t: ports::ToolConfig) -> Self {
        Self {
            require_approval: texts(t.require_approval),
            show_activity: t.show_activity,
        }
    }
}

impl From<ToolConfig> for ports::ToolConfig {
    fn from(t: ToolConfig) -> Self {
        Self {
            require_approval: strings(t.require_approval),
            show_activity: t.show_activity,
        }
    }
}

impl From<ports::Preset> for Preset {
    fn from(p: ports::Preset) -> Self {
        Self {
            preset_id: p.preset_id.into(),
            name: p.name.into(),
            description: p.description.map(Into::into),
            model: p.model.into(),
            system_prompt: p.system_prompt.into(),
            toolsets: p.toolsets.into_iter().map(Into::into).collect(),
            environment: p.environment.into(),
            subagents: p.subagents.into(),
            tool_config: p.tool_config.into(),
            limits: p.limits.into(),
            mcp_servers: p.mcp_servers.into_iter().map(Into::into).collect(),
            is_default: p.is_default,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

impl PresetCreateRequest {
    /// The domain preset; timestamps are placeholders the service overwrites.
    ///
    /// # Errors
    /// An MCP server's transport that is not exactly one of the two (field, message).
    pub fn into_domain(self) -> Result<ports::Preset, (String, String)> {
        let at = ports::now();
        Ok(ports::Preset {
            preset_id: self.preset_id.into(),
            name: self.name.into(),
            description: self.description.map(Into::into),
            model: self.model.into(),
            system_prompt: self.system_prompt.map(Into::into).unwrap_or_default(),
            toolsets: self
                .toolsets
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            environment: self.environment.map(Into::into).unwrap_or_default(),
            subagents: self.subagents.map(Into::into).unwrap_or_default(),
            tool_config: self.tool_config.map(Into::into).unwrap_or_default(),
            limits: self.limits.map(Into::into).unwrap_or_default(),
            mcp_servers: servers_into_domain(self.mcp_servers.unwrap_or_default())?,
            is_default: self.is_default.unwrap_or(false),
            created_at: at,
            updated_at: at,
        })
    }
}

impl PresetUpdateRequest {
    /// The domain patch.
    ///
    /// # Errors
    /// An MCP server's transport that is not exactly one of the two (field, message).
    pub fn into_domain(self) -> Result<PresetPatch, (String, String)> {
        let r = self;
        Ok(PresetPatch {
            name: r.name.map(Into::into),
            description: match r.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(v.into())),
            },
            model: r.model.map(Into::into),
            system_prompt: r.system_prompt.map(Into::into),
            toolsets: r.toolsets.map(|t| t.into_iter().map(Into::into).collect()),
            environment: r.environment.map(Into::into),
            subagents: r.subagents.map(Into::into),
            tool_config: r.tool_config.map(Into::into),
            limits: r.limits.map(Into::into),
            mcp_servers: r.mcp_servers.map(servers_into_domain).transpose()?,
            is_default: r.is_default,
        })
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::{ParseFromJSON, ToJSON};
    use ports::*;

    use super::*;

    fn full_preset() -> ports::Preset {
        let at = from_micros(1_764_000_000_123_456);
        ports::Preset {
            preset_id: "p".into(),
            name: "P".into(),
            description: Some("d".into()),
            model: ports::ModelSettings {
                name: "openai:gpt-4o-mini".into(),
                context_window: Some(128_000),
                temperature: Some(0.5),
                max_tokens: Some(1000),
                ..Default::default()
            },
            system_prompt: "hi {{ cwd }}".into(),
            toolsets: vec![ToolsetSpec {
                toolset_name: "core".into(),
                enabled: false,
                exclude_tools: vec!["grep".into()],
            }],
            environment: EnvironmentSpec {
                shell_mode: ports::ShellMode::Docker,
                container_id: Some("c".into()),
                container_workdir: Some("/w".into()),
                default_path: "/srv".into(),
                allowed_paths: vec!["/tmp".into()],
                env_allow: vec!["TZ".into()],
                sandbox: SandboxSpec {
                    mode: ports::SandboxMode::Off,
                    network: false,
                },
            },
            subagents: SubagentSpec {
                include_builtin: true,
                async_enabled: true,
                refs: vec![ports::SubagentRef {
                    preset_id: "q".into(),
                    name: "q".into(),
                    description: "qq".into(),
                    instruction: Some("ask q".into()),
                }],
            },
            tool_config: ports::ToolConfig {
                require_approval: vec!["shell".into(), "git__create_issue".into()],
                show_activity: true,
            },
            mcp_servers: vec![
                McpServerSpec {
                    name: "git".into(),
                    transport: McpTransport::Stdio(StdioServer {
                        command: "gitea-mcp".into(),
                        args: vec!["-t".into(), "stdio".into()],
                        env_allow: vec!["GITEA_TOKEN".into()],
                        cwd: Some("repos".into()),
                    }),
                    tools: McpToolFilter {
                        include: Some(vec!["create_issue".into()]),
                        exclude: vec!["delete_repo".into()],
                    },
                    proxy: false,
                    timeout_secs: Some(60),
                },
                McpServerSpec {
                    name: "ha".into(),
                    transport: McpTransport::Http(HttpServer {
                        url: "http://ha.lan/mcp".into(),
                        headers_from_env: [("Authorization".to_owned(), "HA_AUTH".to_owned())]
                            .into(),
                    }),
                    tools: McpToolFilter::default(),
                    proxy: true,
                    timeout_secs: None,
                },
            ],
            is_default: true,
            created_at: at,
            updated_at: at,
            limits: Default::default(),
        }
    }

    /// Normalizes timestamps, which both sides render as RFC 3339 but may spell differently.
    fn normalized(mut v: serde_json::Value) -> serde_json::Value {
        for key in ["created_at", "updated_at"] {
            if let Some(s) = v.get(key).and_then(|s| s.as_str()) {
                let t: DateTime<Utc> = s.parse().unwrap();
                v[key] = serde_json::json!(t.timestamp_micros());
            }
        }
        v
    }

    #[test]
    fn preset_dto_serialises_like_the_domain_type() {
        for preset in [full_preset(), {
            let mut p = full_preset();
            p.description = None;
            p.model = ports::ModelSettings {
                name: "test:echo".into(),
                ..Default::default()
            };
            p.environment = EnvironmentSpec::default();
            p.subagents.refs[0].instruction = None;
            p
        }] {
            let domain = serde_json::to_value(&preset).unwrap();
            let dto = super::Preset::from(preset).to_json().unwrap();
            assert_eq!(normalized(dto), normalized(domain));
        }
    }

    #[test]
    fn create_request_fills_defaults_like_the_domain_type() {
        let body = serde_json::json!({"preset_id": "p", "name": "P", "model": {"name": "test:echo"},
            "environment": {}, "toolsets": [{"toolset_name": "core"}]});
        let req = PresetCreateRequest::parse_from_json(Some(body.clone())).unwrap();
        let from_dto = req.into_domain().unwrap();
        let mut with_times = body;
        with_times["created_at"] = serde_json::json!(from_dto.created_at);
        with_times["updated_at"] = serde_json::json!(from_dto.updated_at);
        let from_serde: ports::Preset = serde_json::from_value(with_times).unwrap();
        assert_eq!(from_dto, from_serde);
    }

    #[test]
    fn update_request_tells_null_from_absent() {
        let clear =
            PresetUpdateRequest::parse_from_json(Some(serde_json::json!({"description": null})))
                .unwrap();
        assert_eq!(clear.into_domain().unwrap().description, Some(None));
        let keep =
            PresetUpdateRequest::parse_from_json(Some(serde_json::json!({"name": "n"}))).unwrap();
        let patch = keep.into_domain().unwrap();
        assert_eq!(patch.description, None);
        assert_eq!(patch.name.as_deref(), Some("n"));
    }
}
