//! Rules of a preset's `mcp_servers`. Whether a server starts is not checked here: a
//! preset naming a server that is down is accepted, and its tools are checked when it runs.

use std::collections::HashSet;

use ports::{McpServerSpec, McpTransport, Preset};

use super::{FieldError, err};
use crate::core::tools::mcp::SEPARATOR;

/// Longest server name: it prefixes every tool name, which providers cap at 64.
const MAX_SERVER_NAME: usize = 32;
/// Longest bound on one call, seconds.
const MAX_TIMEOUT_SECS: u32 = 3_600;

pub fn validate(preset: &Preset, errors: &mut Vec<FieldError>) {
    let mut names = HashSet::new();
    for (i, server) in preset.mcp_servers.iter().enumerate() {
        let at = format!("mcp_servers[{i}]");
        if !is_server_name(&server.name) {
            errors.push(err(
                format!("{at}.name"),
                format!(
                    "must be 1-{MAX_SERVER_NAME} characters of a-z, 0-9 and '-', starting with \
                     a letter or digit (it prefixes the server's tools: <name>{SEPARATOR}<tool>)"
                ),
            ));
        } else if !names.insert(server.name.as_str()) {
            errors.push(err(
                format!("{at}.name"),
                format!("duplicate server name {}", server.name),
            ));
        }
        validate_transport(server, &at, errors);
        if server
            .timeout_secs
            .is_some_and(|t| t == 0 || t > MAX_TIMEOUT_SECS)
        {
            errors.push(err(
                format!("{at}.timeout_secs"),
                format!("must be between 1 and {MAX_TIMEOUT_SECS}"),
            ));
        }
        let filter = &server.tools;
        for (list, tools) in [
            ("include", filter.include.as_deref().unwrap_or_default()),
            ("exclude", filter.exclude.as_slice()),
        ] {
            for (j, tool) in tools.iter().enumerate() {
                if tool.trim().is_empty() {
                    errors.push(err(format!("{at}.tools.{list}[{j}]"), "must not be empty"));
                }
            }
        }
    }
}

fn validate_transport(server: &McpServerSpec, at: &str, errors: &mut Vec<FieldError>) {
    match &server.transport {
        McpTransport::Stdio(stdio) => {
            if stdio.command.trim().is_empty() {
                errors.push(err(
                    format!("{at}.transport.stdio.command"),
                    "must not be empty",
                ));
            }
            if stdio.cwd.as_deref().is_some_and(|c| c.trim().is_empty()) {
                errors.push(err(
                    format!("{at}.transport.stdio.cwd"),
                    "must not be empty (leave it out for the environment's default_path)",
                ));
            }
            for (j, name) in stdio.env_allow.iter().enumerate() {
                if !is_variable_name(name) {
                    errors.push(err(
                        format!("{at}.transport.stdio.env_allow[{j}]"),
                        format!("{name:?} is not a variable name"),
                    ));
                }
            }
        }
        McpTransport::Http(http) => {
            let scheme_ok = ["http://", "https://"].iter().any(|scheme| {
                http.url
                    .get(..scheme.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
                    && http.url.len() > scheme.len()
            });
            if !scheme_ok {
                errors.push(err(
                    format!("{at}.transport.http.url"),
                    "must be an http:// or https:// URL",
                ));
            }
            for (header, variable) in &http.headers_from_env {
                if !is_header_name(header) {
                    errors.push(err(
                        format!("{at}.transport.http.headers_from_env"),
                        format!("{header:?} is not a header name"),
                    ));
                }
                if !is_variable_name(variable) {
                    errors.push(err(
                        format!("{at}.transport.http.headers_from_env.{header}"),
                        format!("{variable:?} is not a variable name"),
                    ));
                }
            }
        }
    }
}

/// Whether `tool` (in `require_approval`) names a tool of one of the preset's servers:
/// their tools are known only when they run.
pub fn names_server_tool(preset: &Preset, tool: &str) -> bool {
    tool.split_once(SEPARATOR).is_some_and(|(server, rest)| {
        !rest.is_empty() && preset.mcp_servers.iter().any(|s| s.name == server)
    })
}

fn is_server_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_SERVER_NAME
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RFC 9110 token characters.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ports::{HttpServer, McpToolFilter, StdioServer};

    use super::*;

    fn stdio(name: &str) -> McpServerSpec {
        McpServerSpec {
            name: name.into(),
            transport: McpTransport::Stdio(StdioServer {
                command: "node".into(),
                args: vec!["server.js".into()],
                env_allow: vec!["GITEA_TOKEN".into()],
                cwd: None,
            }),
            tools: McpToolFilter::default(),
            proxy: false,
            timeout_secs: Some(30),
        }
    }

    fn fields(servers: Vec<McpServerSpec>) -> Vec<String> {
        let mut preset = Preset::new("p", "P", "test:echo");
        preset.mcp_servers = servers;
        let mut errors = Vec::new();
        validate(&preset, &mut errors);
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn good_servers_pass() {
        let http = McpServerSpec {
            transport: McpTransport::Http(HttpServer {
                url: "https://ha.lan/mcp".into(),
                headers_from_env: BTreeMap::from([("Authorization".into(), "HA_TOKEN".into())]),
            }),
            ..stdio("home-assistant")
        };
        assert!(fields(vec![stdio("git"), http]).is_empty());
    }

    #[test]
    fn every_broken_rule_names_its_field() {
        let mut bad = stdio("Bad_Name");
        bad.timeout_secs = Some(0);
        bad.tools.exclude = vec![" ".into()];
        bad.transport = McpTransport::Stdio(StdioServer {
            command: " ".into(),
            args: vec![],
            env_allow: vec!["1X".into()],
            cwd: Some(String::new()),
        });
        let http = McpServerSpec {
            transport: McpTransport::Http(HttpServer {
                url: "file:///etc/passwd".into(),
                headers_from_env: BTreeMap::from([("Bad Header".into(), "A-B".into())]),
            }),
            ..stdio("web")
        };
        assert_eq!(
            fields(vec![bad, http, stdio("web")]),
            [
                "mcp_servers[0].name",
                "mcp_servers[0].transport.stdio.command",
                "mcp_servers[0].transport.stdio.cwd",
                "mcp_servers[0].transport.stdio.env_allow[0]",
                "mcp_servers[0].timeout_secs",
                "mcp_servers[0].tools.exclude[0]",
                "mcp_servers[1].transport.http.url",
                "mcp_servers[1].transport.http.headers_from_env",
                "mcp_servers[1].transport.http.headers_from_env.Bad Header",
                "mcp_servers[2].name",
            ]
        );
    }

    #[test]
    fn approval_may_name_a_listed_servers_tool() {
        let mut preset = Preset::new("p", "P", "test:echo");
        preset.mcp_servers = vec![stdio("git")];
        assert!(names_server_tool(&preset, "git__create_issue"));
        assert!(!names_server_tool(&preset, "git__"));
        assert!(!names_server_tool(&preset, "other__create_issue"));
        assert!(!names_server_tool(&preset, "shell"));
    }
}
