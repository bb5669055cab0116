//! A preset's MCP servers as tools (spec 03): each server's tools under `<server>__<tool>`,
//! or, for a server marked `proxy`, two stable tools that search and call them. The
//! connections live in the [`ToolServers`] adapter; this module decides what a server may
//! see (its variables and headers, never the service's own secrets), which of its tools
//! the model is offered, and how a result reads to the model.

mod binding;
mod launch;
mod names;
mod proxy;
mod remote;

use std::sync::Arc;

use futures::future::join_all;
use ports::{EnvironmentFactory, McpServerSpec, Preset, ServerKey, ToolServers, Warning};

use super::Tool;
use crate::core::redact::Redactor;
use binding::Binding;

pub use names::{SEPARATOR, proxied_name};

/// Where the presets' MCP tools come from; cheap to clone.
#[derive(Clone)]
pub struct McpTools {
    pub servers: Arc<dyn ToolServers>,
    /// Reads the service's variables named by `env_allow` and `headers_from_env`.
    pub environments: Arc<dyn EnvironmentFactory>,
    /// The service's secrets: no variable or header holding one reaches a server.
    pub redactor: Redactor,
}

impl McpTools {
    /// The tools of every server `preset` lists, and a warning for each server (or value)
    /// that could not be used: a server that is down costs its tools, never the run.
    pub async fn of(&self, preset: &Preset) -> (Vec<Arc<dyn Tool>>, Vec<Warning>) {
        let each = preset
            .mcp_servers
            .iter()
            .map(|spec| server_tools(preset, spec, self));
        let mut tools = Vec::new();
        let mut warnings = Vec::new();
        for (server_tools, server_warnings) in join_all(each).await {
            tools.extend(server_tools);
            warnings.extend(server_warnings);
        }
        (tools, warnings)
    }
}

async fn server_tools(
    preset: &Preset,
    spec: &McpServerSpec,
    source: &McpTools,
) -> (Vec<Arc<dyn Tool>>, Vec<Warning>) {
    let mut warnings = Vec::new();
    let launch = match launch::resolve(spec, &preset.environment, source, &mut warnings) {
        Ok(launch) => launch,
        Err(why) => {
            warnings.push(unavailable(&spec.name, &why));
            return (Vec::new(), warnings);
        }
    };
    let binding = Arc::new(Binding::new(
        source.servers.clone(),
        ServerKey {
            preset_id: preset.preset_id.clone(),
            server: spec.name.clone(),
        },
        launch,
        spec,
    ));
    // Listed in proxy mode too: a server that is down is reported now, not at its first call.
    match binding.list().await {
        Ok(_) if spec.proxy => (proxy::tools(&binding), warnings),
        Ok(listed) => {
            let (tools, skipped) = remote::tools(&binding, listed);
            warnings.extend(skipped);
            (tools, warnings)
        }
        Err(e) => {
            warnings.push(unavailable(&spec.name, &e.to_string()));
            (Vec::new(), warnings)
        }
    }
}

fn unavailable(server: &str, why: &str) -> Warning {
    Warning {
        code: "mcp_server_unavailable".to_owned(),
        message: format!("MCP server {server} is not available ({why}): its tools are not offered"),
    }
}

#[cfg(test)]
mod tests {
    use ports::mocks::{MockEnvironmentFactory, MockToolServers};
    use ports::{McpToolFilter, McpTransport, RemoteTool, StdioServer, ToolServerError};
    use serde_json::json;

    use super::*;

    fn listed(names: &[&str]) -> Vec<RemoteTool> {
        names
            .iter()
            .map(|n| RemoteTool {
                name: (*n).to_owned(),
                description: format!("does {n}"),
                parameters: json!({"type": "object", "properties": {"x": {"type": "string"}}}),
            })
            .collect()
    }

    fn server(name: &str, tools: McpToolFilter, proxy: bool) -> McpServerSpec {
        McpServerSpec {
            name: name.to_owned(),
            transport: McpTransport::Stdio(StdioServer {
                command: "srv".into(),
                args: vec![],
                env_allow: vec![],
                cwd: None,
            }),
            tools,
            proxy,
            timeout_secs: None,
        }
    }

    async fn offered(preset: &Preset, servers: MockToolServers) -> (Vec<String>, Vec<Warning>) {
        let mut environments = MockEnvironmentFactory::new();
        environments.expect_host_var().returning(|_| None);
        let source = McpTools {
            servers: Arc::new(servers),
            environments: Arc::new(environments),
            redactor: Redactor::default(),
        };
        let (tools, warnings) = source.of(preset).await;
        let mut names: Vec<String> = tools.iter().map(|t| t.name().to_owned()).collect();
        names.sort();
        (names, warnings)
    }

    #[tokio::test]
    async fn each_server_offers_its_admitted_tools_and_a_down_one_a_warning() {
        let mut servers = MockToolServers::new();
        servers
            .expect_tools()
            .returning(|key, _| match key.server.as_str() {
                "git" => Ok(listed(&["list.repos", "create_issue", "delete_repo"])),
                "big" => Ok(listed(&["a", "b"])),
                _ => Err(ToolServerError::Unavailable("cannot start srv".into())),
            });
        let mut preset = Preset::new("p", "P", "test:echo");
        preset.mcp_servers = vec![
            server(
                "git",
                McpToolFilter {
                    include: None,
                    exclude: vec!["delete_repo".into()],
                },
                false,
            ),
            server("big", McpToolFilter::default(), true),
            server("down", McpToolFilter::default(), false),
        ];
        let (names, warnings) = offered(&preset, servers).await;
        assert_eq!(
            names,
            [
                "big__call_tool",
                "big__search_tools",
                "git__create_issue",
                "git__list_repos"
            ]
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].code, "mcp_server_unavailable");
        assert!(
            warnings[0].message.contains("down")
                && warnings[0].message.contains("cannot start srv")
        );
    }

    #[tokio::test]
    async fn a_hostile_server_cannot_flood_the_tool_list() {
        let mut servers = MockToolServers::new();
        servers.expect_tools().returning(|_, _| {
            let mut tools = listed(&["huge"]);
            tools[0].parameters = json!({"type": "object", "description": "x".repeat(40_000)});
            let many: Vec<String> = (0..300).map(|i| format!("t{i}")).collect();
            let names: Vec<&str> = many.iter().map(String::as_str).collect();
            tools.extend(listed(&names));
            Ok(tools)
        });
        let mut preset = Preset::new("p", "P", "test:echo");
        preset.mcp_servers = vec![server("big", McpToolFilter::default(), false)];
        let (names, warnings) = offered(&preset, servers).await;
        assert_eq!(
            names.len(),
            remote::MAX_TOOLS - 1,
            "the huge schema is left out"
        );
        assert!(!names.contains(&"big__huge".to_owned()));
        let codes: Vec<&str> = warnings.iter().map(|w| w.code.as_str()).collect();
        assert_eq!(codes, ["mcp_tool_skipped", "mcp_tool_skipped"]);
        assert!(warnings[1].message.contains("301 tools") && warnings[1].message.contains("proxy"));
    }

    #[tokio::test]
    async fn a_preset_without_servers_asks_nothing() {
        let mut servers = MockToolServers::new();
        servers.expect_tools().never();
        let (names, warnings) = offered(&Preset::new("p", "P", "test:echo"), servers).await;
        assert!(names.is_empty() && warnings.is_empty());
    }
}
