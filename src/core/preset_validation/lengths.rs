//! Length caps on a preset's text (spec 02: "every input a request can grow has a cap"):
//! a 9 MB preset name was accepted, stored, and sent back with every listing. Checked
//! before any other rule, so no other rule parses or echoes an oversize value.
//!
//! Lengths are in characters, as the published schema's `maxLength` counts them.

use ports::{McpServerSpec, McpTransport, Preset};

use super::FieldError;
use crate::core::limits::{
    MAX_DESCRIPTION_CHARS, MAX_IDENT_CHARS, MAX_INSTRUCTION_CHARS, MAX_LIST_ITEMS, MAX_NAME_CHARS,
    MAX_PATH_CHARS, MAX_TEMPLATE_CHARS,
};

fn check_environment(c: &mut Checker, env: &ports::EnvironmentSpec) {
    if let Some(id) = &env.container_id {
        c.text("environment.container_id", id, MAX_IDENT_CHARS);
    }
    if let Some(dir) = &env.container_workdir {
        c.text("environment.container_workdir", dir, MAX_PATH_CHARS);
    }
    c.text(
        "environment.default_path",
        &env.default_path,
        MAX_PATH_CHARS,
    );
    c.texts(
        "environment.allowed_paths",
        &env.allowed_paths,
        MAX_PATH_CHARS,
    );
    c.texts("environment.env_allow", &env.env_allow, MAX_IDENT_CHARS);
}

/// Every text field of `preset` over its cap, and every list over [`MAX_LIST_ITEMS`].
pub fn check(preset: &Preset) -> Vec<FieldError> {
    let mut c = Checker::default();
    c.text("preset_id", &preset.preset_id, MAX_IDENT_CHARS);
    c.text("name", &preset.name, MAX_NAME_CHARS);
    if let Some(d) = &preset.description {
        c.text("description", d, MAX_DESCRIPTION_CHARS);
    }
    c.text("model.name", &preset.model.name, MAX_IDENT_CHARS);
    c.texts("model.fallbacks", &preset.model.fallbacks, MAX_IDENT_CHARS);
    c.text("system_prompt", &preset.system_prompt, MAX_TEMPLATE_CHARS);
    if c.list("toolsets", preset.toolsets.len()) {
        for (i, t) in preset.toolsets.iter().enumerate() {
            c.text(
                &format!("toolsets[{i}].toolset_name"),
                &t.toolset_name,
                MAX_IDENT_CHARS,
            );
            c.texts(
                &format!("toolsets[{i}].exclude_tools"),
                &t.exclude_tools,
                MAX_IDENT_CHARS,
            );
        }
    }
    check_environment(&mut c, &preset.environment);
    if c.list("subagents.refs", preset.subagents.refs.len()) {
        for (i, r) in preset.subagents.refs.iter().enumerate() {
            let at = format!("subagents.refs[{i}]");
            c.text(&format!("{at}.preset_id"), &r.preset_id, MAX_IDENT_CHARS);
            c.text(&format!("{at}.name"), &r.name, MAX_IDENT_CHARS);
            c.text(
                &format!("{at}.description"),
                &r.description,
                MAX_DESCRIPTION_CHARS,
            );
            if let Some(instruction) = &r.instruction {
                c.text(
                    &format!("{at}.instruction"),
                    instruction,
                    MAX_INSTRUCTION_CHARS,
                );
            }
        }
    }
    c.texts(
        "tool_config.require_approval",
        &preset.tool_config.require_approval,
        MAX_IDENT_CHARS,
    );
    if c.list("mcp_servers", preset.mcp_servers.len()) {
        for (i, server) in preset.mcp_servers.iter().enumerate() {
            check_mcp_server(&mut c, &format!("mcp_servers[{i}]"), server);
        }
    }
    c.errors
}

fn check_mcp_server(c: &mut Checker, at: &str, server: &McpServerSpec) {
    c.text(&format!("{at}.name"), &server.name, MAX_IDENT_CHARS);
    match &server.transport {
        McpTransport::Stdio(stdio) => {
            let at = format!("{at}.transport.stdio");
            c.text(&format!("{at}.command"), &stdio.command, MAX_PATH_CHARS);
            c.texts(&format!("{at}.args"), &stdio.args, MAX_PATH_CHARS);
            c.texts(
                &format!("{at}.env_allow"),
                &stdio.env_allow,
                MAX_IDENT_CHARS,
            );
            if let Some(cwd) = &stdio.cwd {
                c.text(&format!("{at}.cwd"), cwd, MAX_PATH_CHARS);
            }
        }
        McpTransport::Http(http) => {
            let at = format!("{at}.transport.http");
            c.text(&format!("{at}.url"), &http.url, MAX_PATH_CHARS);
            let field = format!("{at}.headers_from_env");
            if c.list(&field, http.headers_from_env.len()) {
                for (header, variable) in &http.headers_from_env {
                    c.text(&field, header, MAX_IDENT_CHARS);
                    c.text(&format!("{field}.{header}"), variable, MAX_IDENT_CHARS);
                }
            }
        }
    }
    if let Some(include) = &server.tools.include {
        c.texts(&format!("{at}.tools.include"), include, MAX_IDENT_CHARS);
    }
    c.texts(
        &format!("{at}.tools.exclude"),
        &server.tools.exclude,
        MAX_IDENT_CHARS,
    );
}

/// The error for a text over its cap, or `None`.
pub fn too_long(value: &str, max: usize) -> Option<String> {
    // Counting stops past the cap: a huge value costs no more than a long one.
    let chars = value.chars().take(max + 1).count();
    (chars > max).then(|| {
        format!(
            "is {} characters long; at most {max} are allowed",
            value.chars().count()
        )
    })
}

#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn text(&mut self, field: &str, value: &str, max: usize) {
        if let Some(message) = too_long(value, max) {
            self.push(field, message);
        }
    }

    /// Checks the list's length; `true` when its items are worth checking one by one.
    fn list(&mut self, field: &str, len: usize) -> bool {
        if len > MAX_LIST_ITEMS {
            self.push(
                field,
                format!("has {len} entries; at most {MAX_LIST_ITEMS} are allowed"),
            );
            return false;
        }
        true
    }

    fn texts(&mut self, field: &str, values: &[String], max: usize) {
        if self.list(field, values.len()) {
            for (i, value) in values.iter().enumerate() {
                self.text(&format!("{field}[{i}]"), value, max);
            }
        }
    }

    fn push(&mut self, field: &str, message: String) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use ports::{SubagentRef, ToolsetSpec};

    use super::*;

    fn preset() -> Preset {
        Preset::new("p", "P", "test:echo")
    }

    fn fields(p: &Preset) -> Vec<String> {
        check(p).into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn text_at_the_cap_passes_and_one_more_character_fails() {
        let mut p = preset();
        p.name = "é".repeat(MAX_NAME_CHARS);
        assert!(check(&p).is_empty(), "characters, not bytes");
        p.name.push('x');
        assert_eq!(
            check(&p),
            vec![FieldError {
                field: "name".into(),
                message: format!(
                    "is {} characters long; at most {MAX_NAME_CHARS} are allowed",
                    MAX_NAME_CHARS + 1
                ),
            }]
        );
    }

    #[test]
    fn every_capped_field_is_named() {
        let long = |n: usize| "x".repeat(n + 1);
        let mut p = preset();
        p.name = long(MAX_NAME_CHARS);
        p.description = Some(long(MAX_DESCRIPTION_CHARS));
        p.system_prompt = long(MAX_TEMPLATE_CHARS);
        p.toolsets = vec![ToolsetSpec {
            toolset_name: "core".into(),
            enabled: true,
            exclude_tools: vec!["view".into(), long(MAX_IDENT_CHARS)],
        }];
        p.subagents.refs = vec![SubagentRef {
            preset_id: "w".into(),
            name: "w".into(),
            description: long(MAX_DESCRIPTION_CHARS),
            instruction: Some(long(MAX_INSTRUCTION_CHARS)),
        }];
        p.tool_config.require_approval = vec!["shell".into(); MAX_LIST_ITEMS + 1];
        assert_eq!(
            fields(&p),
            [
                "name",
                "description",
                "system_prompt",
                "toolsets[0].exclude_tools[1]",
                "subagents.refs[0].description",
                "subagents.refs[0].instruction",
                "tool_config.require_approval",
            ]
        );
    }
}
