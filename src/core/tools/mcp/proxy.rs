//! Proxy mode: a server's tools behind two tools whose names and schemas never change,
//! `<server>__search_tools` and `<server>__call_tool`, so a large server costs two tool
//! definitions and the prompt prefix stays cacheable.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::binding::Binding;
use super::names::{PROXY_CALL, PROXY_SEARCH, namespaced};
use super::remote::{MAX_DESCRIPTION, object_schema};
use crate::core::tools::{Tool, ToolContext, ToolError, ToolOutput, schema_of, truncate_chars};

/// Tools one search lists at most.
const MAX_LISTED: usize = 25;

/// The two proxy tools of a server.
pub fn tools(binding: &Arc<Binding>) -> Vec<Arc<dyn Tool>> {
    let named = |tool: &str| namespaced(binding.server(), tool).unwrap_or_default();
    vec![
        Arc::new(SearchTools {
            name: named(PROXY_SEARCH),
            description: format!(
                "List the tools of the MCP server {} whose name or description contains the \
                 query (all of them when it is empty), with their argument schemas. Call one \
                 with {}.",
                binding.server(),
                named(PROXY_CALL)
            ),
            binding: binding.clone(),
        }),
        Arc::new(CallTool {
            name: named(PROXY_CALL),
            description: format!(
                "Call a tool of the MCP server {} by the name {} lists, with its arguments.",
                binding.server(),
                named(PROXY_SEARCH)
            ),
            binding: binding.clone(),
        }),
    ]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// Words to look for in the tools' names and descriptions; empty lists every tool.
    #[serde(default)]
    query: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CallArgs {
    /// The tool's name as the search listed it.
    name: String,
    /// The tool's arguments, as its schema describes them.
    #[serde(default)]
    arguments: Map<String, Value>,
}

struct SearchTools {
    name: String,
    description: String,
    binding: Arc<Binding>,
}

struct CallTool {
    name: String,
    description: String,
    binding: Arc<Binding>,
}

fn parse<A: serde::de::DeserializeOwned>(tool: &str, text: &str) -> Result<A, ToolError> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_json::from_str(text).map_err(|e| ToolError(format!("invalid arguments for {tool}: {e}")))
}

#[async_trait]
impl Tool for SearchTools {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        schema_of::<SearchArgs>()
    }

    fn mutates_files(&self) -> bool {
        false
    }

    async fn call(&self, _ctx: &ToolContext<'_>, text: &str) -> Result<ToolOutput, ToolError> {
        let args: SearchArgs = parse(&self.name, text)?;
        let listed = self
            .binding
            .list()
            .await
            .map_err(|e| ToolError(format!("MCP server {}: {e}", self.binding.server())))?;
        let words: Vec<String> = args
            .query
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let found: Vec<Value> = listed
            .into_iter()
            .filter(|t| {
                let haystack = format!("{} {}", t.name, t.description).to_lowercase();
                words.iter().all(|w| haystack.contains(w.as_str()))
            })
            .take(MAX_LISTED)
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": truncate_chars(t.description, MAX_DESCRIPTION),
                    "parameters": object_schema(t.parameters),
                })
            })
            .collect();
        if found.is_empty() {
            return Ok(ToolOutput::text(format!(
                "No tool of {} matches {:?}.",
                self.binding.server(),
                args.query
            )));
        }
        Ok(ToolOutput::text(Value::Array(found).to_string()))
    }
}

#[async_trait]
impl Tool for CallTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        schema_of::<CallArgs>()
    }

    fn mutates_files(&self) -> bool {
        true
    }

    async fn call(&self, _ctx: &ToolContext<'_>, text: &str) -> Result<ToolOutput, ToolError> {
        let args: CallArgs = parse(&self.name, text)?;
        if !self.binding.admits(&args.name) {
            return Err(ToolError(format!(
                "{} offers no tool {:?} to this agent",
                self.binding.server(),
                args.name
            )));
        }
        self.binding.call(&args.name, args.arguments).await
    }
}
