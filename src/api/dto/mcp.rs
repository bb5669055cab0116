//! A preset's MCP servers on the wire. `transport` holds exactly one of `stdio` and
//! `http`: an object with two optional members reads the same in every generated client,
//! where an untagged union would not.

use std::collections::BTreeMap;

use poem_openapi::Object;

use super::capped::{Ident, PathText};
use super::strict::no_null;
use super::text::{strings, texts};

/// An MCP server whose tools the agent gets as `<name>__<tool>`.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct McpServer {
    /// 1-32 characters of a-z, 0-9 and '-'; prefixes the server's tools.
    pub name: Ident,
    pub transport: McpTransport,
    #[oai(deserialize_with = "no_null")]
    pub tools: Option<McpToolFilter>,
    /// Offer `<name>__search_tools` and `<name>__call_tool` instead of every tool (a
    /// constant tool list for large servers).
    #[oai(default)]
    pub proxy: bool,
    /// Bound on one tool call, seconds (default 120).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "3600")))]
    pub timeout_secs: Option<u32>,
}

/// Exactly one of `stdio` and `http`.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct McpTransport {
    #[oai(deserialize_with = "no_null")]
    pub stdio: Option<StdioTransport>,
    #[oai(deserialize_with = "no_null")]
    pub http: Option<HttpTransport>,
}

/// A long-lived process in the preset's environment (sandboxed like its shell; `docker
/// exec -i` in docker mode), spoken to over stdin/stdout.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct StdioTransport {
    pub command: PathText,
    #[oai(default)]
    pub args: Vec<PathText>,
    /// Service environment variables the server sees (never the service's own secrets).
    #[oai(default)]
    pub env_allow: Vec<Ident>,
    /// Working directory; default: the environment's `default_path`.
    #[oai(nullable)]
    pub cwd: Option<PathText>,
}

/// A streamable-HTTP endpoint, reached under the outbound policy (`FETCH_ALLOW_HOSTS`
/// for a server on this machine or the LAN).
#[derive(Object, Debug, Clone, PartialEq)]
pub struct HttpTransport {
    pub url: PathText,
    /// Header name → the service environment variable holding its value.
    #[oai(default)]
    pub headers_from_env: BTreeMap<String, Ident>,
}

/// Which of the server's tools are offered: `include` (all when absent) minus `exclude`.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct McpToolFilter {
    #[oai(nullable)]
    pub include: Option<Vec<Ident>>,
    #[oai(default)]
    pub exclude: Vec<Ident>,
}

impl From<ports::McpServerSpec> for McpServer {
    fn from(s: ports::McpServerSpec) -> Self {
        let transport = match s.transport {
            ports::McpTransport::Stdio(stdio) => McpTransport {
                stdio: Some(StdioTransport {
                    command: stdio.command.into(),
                    args: texts(stdio.args),
                    env_allow: texts(stdio.env_allow),
                    cwd: stdio.cwd.map(Into::into),
                }),
                http: None,
            },
            ports::McpTransport::Http(http) => McpTransport {
                stdio: None,
                http: Some(HttpTransport {
                    url: http.url.into(),
                    headers_from_env: values_into(http.headers_from_env),
                }),
            },
        };
        Self {
            name: s.name.into(),
            transport,
            tools: Some(McpToolFilter {
                include: s.tools.include.map(texts),
                exclude: texts(s.tools.exclude),
            }),
            proxy: s.proxy,
            timeout_secs: s.timeout_secs,
        }
    }
}

impl McpServer {
    /// The domain server; `Err` names the field when `transport` has not exactly one member.
    pub fn into_domain(self, at: &str) -> Result<ports::McpServerSpec, (String, String)> {
        let transport = match (self.transport.stdio, self.transport.http) {
            (Some(stdio), None) => ports::McpTransport::Stdio(ports::StdioServer {
                command: stdio.command.into(),
                args: strings(stdio.args),
                env_allow: strings(stdio.env_allow),
                cwd: stdio.cwd.map(Into::into),
            }),
            (None, Some(http)) => ports::McpTransport::Http(ports::HttpServer {
                url: http.url.into(),
                headers_from_env: values_into(http.headers_from_env),
            }),
            _ => {
                return Err((
                    format!("{at}.transport"),
                    "must hold exactly one of stdio and http".to_owned(),
                ));
            }
        };
        let tools =
            self.tools
                .map_or_else(ports::McpToolFilter::default, |t| ports::McpToolFilter {
                    include: t.include.map(strings),
                    exclude: strings(t.exclude),
                });
        Ok(ports::McpServerSpec {
            name: self.name.into(),
            transport,
            tools,
            proxy: self.proxy,
            timeout_secs: self.timeout_secs,
        })
    }
}

/// A map with its values converted (wire text ↔ domain strings).
fn values_into<A: Into<B>, B>(map: BTreeMap<String, A>) -> BTreeMap<String, B> {
    map.into_iter().map(|(k, v)| (k, v.into())).collect()
}

/// A request's servers as domain values, or the first transport that is not one of the two.
pub fn servers_into_domain(
    servers: Vec<McpServer>,
) -> Result<Vec<ports::McpServerSpec>, (String, String)> {
    servers
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.into_domain(&format!("mcp_servers[{i}]")))
        .collect()
}
