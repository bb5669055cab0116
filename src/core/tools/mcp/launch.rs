//! A server's launch as the adapter gets it: the process's variables and the endpoint's
//! headers read from the service's environment, with the service's own secrets kept out.

use ports::{EnvironmentSpec, McpServerSpec, McpTransport, ServerLaunch, Warning};

use super::McpTools;
use crate::core::environment::base_vars;

/// Resolves `spec` for the preset's `environment`. A variable that is unset is left out;
/// one holding a service secret is left out with a warning. A header is needed for the
/// server to work, so an unset or refused one makes it unavailable (`Err` says why).
pub fn resolve(
    spec: &McpServerSpec,
    environment: &EnvironmentSpec,
    source: &McpTools,
    warnings: &mut Vec<Warning>,
) -> Result<ServerLaunch, String> {
    match &spec.transport {
        McpTransport::Stdio(stdio) => {
            let mut names: Vec<&str> = base_vars(environment.shell_mode).collect();
            names.extend(stdio.env_allow.iter().map(String::as_str));
            let mut env = Vec::new();
            for name in names {
                let Some(value) = source.environments.host_var(name) else {
                    continue;
                };
                if source.redactor.holds(&value) {
                    warnings.push(refused(&spec.name, name));
                } else if !env.iter().any(|(n, _)| n == name) {
                    env.push((name.to_owned(), value));
                }
            }
            Ok(ServerLaunch::Stdio {
                command: stdio.command.clone(),
                args: stdio.args.clone(),
                cwd: stdio.cwd.clone(),
                env,
                environment: environment.clone(),
            })
        }
        McpTransport::Http(http) => {
            let mut headers = Vec::new();
            for (header, variable) in &http.headers_from_env {
                let value = source
                    .environments
                    .host_var(variable)
                    .ok_or_else(|| format!("header {header}: variable {variable} is not set"))?;
                if source.redactor.holds(&value) {
                    return Err(format!(
                        "header {header}: variable {variable} holds one of the service's own \
                         secrets, which no MCP server is given"
                    ));
                }
                headers.push((header.clone(), value));
            }
            Ok(ServerLaunch::Http {
                url: http.url.clone(),
                headers,
            })
        }
    }
}

fn refused(server: &str, variable: &str) -> Warning {
    Warning {
        code: "mcp_variable_refused".to_owned(),
        message: format!(
            "MCP server {server}: variable {variable} holds one of the service's own secrets \
             and is not passed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use ports::mocks::{MockEnvironmentFactory, MockToolServers};
    use ports::{HttpServer, McpToolFilter, StdioServer};

    use super::*;
    use crate::core::redact::Redactor;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "PATH" => Some("/usr/bin".into()),
            "GITEA_TOKEN" => Some("gitea-token-123".into()),
            "OPENAI_API_KEY" => Some("sk-service-secret".into()),
            _ => None,
        }
    }

    fn spec(transport: McpTransport) -> McpServerSpec {
        McpServerSpec {
            name: "git".into(),
            transport,
            tools: McpToolFilter::default(),
            proxy: false,
            timeout_secs: None,
        }
    }

    fn resolve_with(spec: &McpServerSpec) -> (Result<ServerLaunch, String>, Vec<Warning>) {
        let mut environments = MockEnvironmentFactory::new();
        environments.expect_host_var().returning(lookup);
        let source = McpTools {
            servers: Arc::new(MockToolServers::new()),
            environments: Arc::new(environments),
            redactor: Redactor::new(["sk-service-secret".to_owned()]),
        };
        let mut warnings = Vec::new();
        let launch = resolve(spec, &EnvironmentSpec::default(), &source, &mut warnings);
        (launch, warnings)
    }

    #[test]
    fn a_process_gets_its_allowed_variables_but_never_a_service_secret() {
        let (launch, warnings) = resolve_with(&spec(McpTransport::Stdio(StdioServer {
            command: "gitea-mcp".into(),
            args: vec![],
            env_allow: vec![
                "GITEA_TOKEN".into(),
                "OPENAI_API_KEY".into(),
                "UNSET".into(),
            ],
            cwd: None,
        })));
        let Ok(ServerLaunch::Stdio { env, .. }) = launch else {
            panic!("{launch:?}")
        };
        assert_eq!(
            env,
            vec![
                ("PATH".to_owned(), "/usr/bin".to_owned()),
                ("GITEA_TOKEN".to_owned(), "gitea-token-123".to_owned())
            ]
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].code, "mcp_variable_refused");
        assert!(warnings[0].message.contains("OPENAI_API_KEY"));
    }

    #[test]
    fn headers_come_from_variables_and_a_missing_or_secret_one_is_refused() {
        let http = |var: &str| {
            spec(McpTransport::Http(HttpServer {
                url: "http://ha.lan/mcp".into(),
                headers_from_env: BTreeMap::from([("Authorization".to_owned(), var.to_owned())]),
            }))
        };
        let (launch, _) = resolve_with(&http("GITEA_TOKEN"));
        assert_eq!(
            launch,
            Ok(ServerLaunch::Http {
                url: "http://ha.lan/mcp".into(),
                headers: vec![("Authorization".into(), "gitea-token-123".into())],
            })
        );
        assert!(
            resolve_with(&http("UNSET"))
                .0
                .unwrap_err()
                .contains("UNSET is not set")
        );
        assert!(
            resolve_with(&http("OPENAI_API_KEY"))
                .0
                .unwrap_err()
                .contains("secrets")
        );
    }
}
