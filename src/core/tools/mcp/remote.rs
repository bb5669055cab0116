//! One MCP tool, offered under its namespaced name with the server's description and
//! schema.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use ports::{RemoteTool, Warning};
use serde_json::{Value, json};

use super::binding::{Binding, arguments};
use super::names::namespaced;
use crate::core::tools::{Tool, ToolContext, ToolError, ToolOutput, truncate_chars};

/// Longest tool description kept: the server's text goes into every request.
pub const MAX_DESCRIPTION: usize = 4_000;

/// A server's tool.
pub struct RemoteToolCall {
    name: String,
    remote: String,
    description: String,
    parameters: Value,
    binding: Arc<Binding>,
}

/// Most tools one server offers directly: each costs its schema in every request. A
/// larger server belongs in proxy mode.
pub const MAX_TOOLS: usize = 128;
/// Largest argument schema kept, bytes of JSON.
pub const MAX_SCHEMA_BYTES: usize = 32 * 1024;

/// The listed tools as the model's tools. Left out, with a warning each: a tool whose
/// name is empty or collides with another once namespaced, one whose schema is over
/// [`MAX_SCHEMA_BYTES`], and every tool past the first [`MAX_TOOLS`].
pub fn tools(
    binding: &Arc<Binding>,
    listed: Vec<RemoteTool>,
) -> (Vec<Arc<dyn Tool>>, Vec<Warning>) {
    let mut seen = BTreeSet::new();
    let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
    let mut warnings = Vec::new();
    let skipped = |tool: &str, why: &str| Warning {
        code: "mcp_tool_skipped".to_owned(),
        message: format!(
            "MCP server {}: tool {tool:?} is not offered: {why}",
            binding.server()
        ),
    };
    let total = listed.len();
    for tool in listed.into_iter().take(MAX_TOOLS) {
        let Some(name) =
            namespaced(binding.server(), &tool.name).filter(|n| seen.insert(n.clone()))
        else {
            warnings.push(skipped(
                &tool.name,
                "its name is empty or clashes with another once made a valid tool name",
            ));
            continue;
        };
        if tool.parameters.to_string().len() > MAX_SCHEMA_BYTES {
            warnings.push(skipped(&tool.name, "its argument schema is over 32 KiB"));
            continue;
        }
        tools.push(Arc::new(RemoteToolCall {
            name,
            description: truncate_chars(tool.description, MAX_DESCRIPTION),
            parameters: object_schema(tool.parameters),
            remote: tool.name,
            binding: binding.clone(),
        }));
    }
    if total > MAX_TOOLS {
        warnings.push(Warning {
            code: "mcp_tool_skipped".to_owned(),
            message: format!(
                "MCP server {} lists {total} tools; the first {MAX_TOOLS} are offered \
                 (set proxy: true to reach them all through search_tools and call_tool)",
                binding.server()
            ),
        });
    }
    (tools, warnings)
}

/// Providers want an object schema; a server sending anything else gets an open one.
pub fn object_schema(schema: Value) -> Value {
    match schema {
        Value::Object(map) if map.get("type").is_none_or(|t| t == "object") => Value::Object(map),
        _ => json!({"type": "object"}),
    }
}

#[async_trait]
impl Tool for RemoteToolCall {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        self.parameters.clone()
    }

    /// The server's tools may do anything, files included: ordered with the file tools.
    fn mutates_files(&self) -> bool {
        true
    }

    async fn call(
        &self,
        _ctx: &ToolContext<'_>,
        arguments_text: &str,
    ) -> Result<ToolOutput, ToolError> {
        self.binding
            .call(&self.remote, arguments(arguments_text)?)
            .await
    }
}
