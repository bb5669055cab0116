//! The rules a preset must follow beyond its schema (spec 02). Every broken rule is
//! reported with the field it concerns, so a caller can fix them all at once.

use ports::{Preset, PresetId, ShellMode};

pub mod lengths;
mod mcp;

use self::lengths as preset_lengths;
use super::catalogue;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `toolsets[1].exclude_tools[0]`.
    pub field: String,
    pub message: String,
}

/// A preset path reaching the service's own files, reported like any broken rule.
impl From<ports::PathProblem> for FieldError {
    fn from(p: ports::PathProblem) -> Self {
        Self {
            field: p.field,
            message: p.message,
        }
    }
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Model providers a model name may name.
const PROVIDERS: &[&str] = &["openai", "anthropic", "test"];

/// Checks everything that needs no storage; `missing_refs` lists subagent preset ids that
/// do not exist (the caller looked them up).
pub fn validate(preset: &Preset, missing_refs: &[PresetId]) -> Vec<FieldError> {
    let mut errors = preset_lengths::check(preset);
    if !errors.is_empty() {
        return errors; // the other rules would only parse or echo the oversize values
    }
    if !is_slug(&preset.preset_id) {
        errors.push(err(
            "preset_id",
            "must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit",
        ));
    }
    if preset.name.trim().is_empty() {
        errors.push(err("name", "must not be empty"));
    }
    if let Some(message) = model_name_problem(&preset.model.name) {
        errors.push(err("model.name", message));
    }
    for (i, fallback) in preset.model.fallbacks.iter().enumerate() {
        if let Some(message) = model_name_problem(fallback) {
            errors.push(err(format!("model.fallbacks[{i}]"), message));
        }
    }
    if let Some(t) = preset.model.temperature
        && !(0.0..=2.0).contains(&t)
    {
        errors.push(err("model.temperature", "must be between 0 and 2"));
    }
    if let Err(e) = minijinja::Environment::new().template_from_str(&preset.system_prompt) {
        errors.push(err(
            "system_prompt",
            format!("template does not parse: {e}"),
        ));
    }
    validate_toolsets(preset, &mut errors);
    validate_environment(preset, &mut errors);
    validate_subagent_refs(preset, missing_refs, &mut errors);
    validate_approvals(preset, &mut errors);
    mcp::validate(preset, &mut errors);
    errors
}

fn validate_environment(preset: &Preset, errors: &mut Vec<FieldError>) {
    let env = &preset.environment;
    if env.shell_mode == ShellMode::Docker
        && env
            .container_id
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
    {
        errors.push(err(
            "environment.container_id",
            "required when shell_mode is docker",
        ));
    }
    if env.default_path.trim().is_empty() {
        errors.push(err("environment.default_path", "must not be empty"));
    }
}

fn validate_subagent_refs(
    preset: &Preset,
    missing_refs: &[PresetId],
    errors: &mut Vec<FieldError>,
) {
    let mut names = std::collections::HashSet::new();
    for (i, r) in preset.subagents.refs.iter().enumerate() {
        if r.name.trim().is_empty() {
            errors.push(err(
                format!("subagents.refs[{i}].name"),
                "must not be empty",
            ));
        } else if !is_slug(&r.name) || r.name == ports::MAIN_AGENT {
            errors.push(err(
                format!("subagents.refs[{i}].name"),
                "must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or \
                 digit, and not \"main\" (it names the subagent's events)",
            ));
        } else if !names.insert(r.name.as_str()) {
            errors.push(err(
                format!("subagents.refs[{i}].name"),
                format!("duplicate subagent name {}", r.name),
            ));
        }
        if missing_refs.contains(&r.preset_id) {
            errors.push(err(
                format!("subagents.refs[{i}].preset_id"),
                format!("no preset {}", r.preset_id),
            ));
        }
    }
}

fn validate_approvals(preset: &Preset, errors: &mut Vec<FieldError>) {
    for (i, tool) in preset.tool_config.require_approval.iter().enumerate() {
        let builtin = catalogue::TOOLSETS
            .iter()
            .any(|(_, tools)| tools.contains(&tool.as_str()));
        if !builtin && !mcp::names_server_tool(preset, tool) {
            errors.push(err(
                format!("tool_config.require_approval[{i}]"),
                format!("unknown tool {tool}"),
            ));
        }
    }
}

fn validate_toolsets(preset: &Preset, errors: &mut Vec<FieldError>) {
    for (i, toolset) in preset.toolsets.iter().enumerate() {
        let Some(tools) = catalogue::tools_of(&toolset.toolset_name) else {
            errors.push(err(
                format!("toolsets[{i}].toolset_name"),
                format!(
                    "unknown toolset {}; known: {}",
                    toolset.toolset_name,
                    catalogue::toolset_names()
                ),
            ));
            continue;
        };
        if toolset.enabled
            && catalogue::UNAVAILABLE_TOOLSETS.contains(&toolset.toolset_name.as_str())
        {
            errors.push(err(
                format!("toolsets[{i}].toolset_name"),
                format!(
                    "toolset {} offers no tools yet; remove it or disable it",
                    toolset.toolset_name
                ),
            ));
        }
        for (j, tool) in toolset.exclude_tools.iter().enumerate() {
            if !tools.contains(&tool.as_str()) {
                errors.push(err(
                    format!("toolsets[{i}].exclude_tools[{j}]"),
                    format!(
                        "toolset {} has no tool {tool}; it has: {}",
                        toolset.toolset_name,
                        tools.join(", ")
                    ),
                ));
            }
        }
    }
}

/// `provider:model` or `gateway@provider:model`; `None` when well-formed.
pub fn model_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("must not be empty".into());
    }
    let after_gateway = match name.split_once('@') {
        Some((gateway, rest)) if !gateway.is_empty() => rest,
        Some(_) => return Some("gateway name before '@' is empty".into()),
        None => name,
    };
    match after_gateway.split_once(':') {
        Some((provider, model)) if PROVIDERS.contains(&provider) && !model.is_empty() => None,
        Some((provider, _)) if !PROVIDERS.contains(&provider) => Some(format!(
            "unknown provider {provider}; expected one of {}",
            PROVIDERS.join(", ")
        )),
        _ => Some("expected provider:model, e.g. openai:gpt-4o-mini or test:echo".into()),
    }
}

fn is_slug(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use ports::*;

    use super::*;

    fn preset() -> Preset {
        let now = now();
        Preset {
            mcp_servers: Vec::new(),
            preset_id: "ok-1".into(),
            name: "Ok".into(),
            description: None,
            model: ModelSettings {
                name: "test:echo".into(),
                ..Default::default()
            },
            system_prompt: "Work in {{ cwd }}.".into(),
            toolsets: vec![ToolsetSpec {
                toolset_name: "core".into(),
                enabled: true,
                exclude_tools: vec!["write".into()],
            }],
            environment: EnvironmentSpec::default(),
            subagents: SubagentSpec::default(),
            tool_config: ToolConfig::default(),
            is_default: false,
            created_at: now,
            updated_at: now,
            limits: Default::default(),
        }
    }

    fn fields(p: &Preset, missing: &[PresetId]) -> Vec<String> {
        validate(p, missing).into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_good_preset_passes() {
        assert!(validate(&preset(), &[]).is_empty());
        for name in [
            "openai:gpt-4o-mini",
            "anthropic:claude-sonnet-4",
            "mygw@openai:qwen3",
            "test:call:shell",
        ] {
            let mut p = preset();
            p.model.name = name.into();
            assert!(validate(&p, &[]).is_empty(), "{name}");
        }
    }

    #[test]
    fn a_toolset_without_tools_yet_is_refused_unless_disabled() {
        let toolset = |name: &str, enabled: bool| ToolsetSpec {
            toolset_name: name.into(),
            enabled,
            exclude_tools: vec![],
        };
        let mut p = preset();
        p.toolsets = vec![
            toolset("media", true),
            toolset("web", true),
            toolset("document", false),
        ];
        assert_eq!(fields(&p, &[]), vec!["toolsets[0].toolset_name"]);
    }

    #[test]
    fn every_broken_rule_is_listed_with_its_field() {
        let mut p = preset();
        p.preset_id = "Bad Id".into();
        p.name = " ".into();
        p.model.name = String::new();
        p.model.temperature = Some(3.0);
        p.system_prompt = "{% if %}".into();
        p.toolsets = vec![
            ToolsetSpec {
                toolset_name: "nope".into(),
                enabled: true,
                exclude_tools: vec![],
            },
            ToolsetSpec {
                toolset_name: "core".into(),
                enabled: true,
                exclude_tools: vec!["view".into(), "shell".into()],
            },
        ];
        p.environment.shell_mode = ShellMode::Docker;
        p.subagents.refs = vec![
            SubagentRef {
                preset_id: "gone".into(),
                name: "a".into(),
                description: String::new(),
                instruction: None,
            },
            SubagentRef {
                preset_id: "ok-1".into(),
                name: "a".into(),
                description: String::new(),
                instruction: None,
            },
            SubagentRef {
                preset_id: "ok-1".into(),
                name: "main".into(),
                description: String::new(),
                instruction: None,
            },
            SubagentRef {
                preset_id: "ok-1".into(),
                name: "a/b".into(),
                description: String::new(),
                instruction: None,
            },
        ];
        p.tool_config.require_approval = vec!["shell".into(), "rm_rf".into()];
        assert_eq!(
            fields(&p, &["gone".into()]),
            vec![
                "preset_id",
                "name",
                "model.name",
                "model.temperature",
                "system_prompt",
                "toolsets[0].toolset_name",
                "toolsets[1].exclude_tools[1]",
                "environment.container_id",
                "subagents.refs[0].preset_id",
                "subagents.refs[1].name",
                "subagents.refs[2].name",
                "subagents.refs[3].name",
                "tool_config.require_approval[1]",
            ]
        );
    }

    #[test]
    fn model_names_are_checked_for_shape() {
        for bad in ["gpt-4o", "openai:", "foo:bar", "@openai:x", ":x"] {
            let mut p = preset();
            p.model.name = bad.into();
            assert_eq!(fields(&p, &[]), vec!["model.name"], "{bad}");
        }
    }

    #[test]
    fn docker_with_container_passes() {
        let mut p = preset();
        p.environment.shell_mode = ShellMode::Docker;
        p.environment.container_id = Some("box".into());
        assert!(validate(&p, &[]).is_empty());
    }
}
