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

/// The listed tools as the model's tools; a tool whose name collides with another after
/// namespacing is left out with a warning.
pub fn tools(
    binding: &Arc<Binding>,
    listed: Vec<RemoteTool>,
) -> (Vec<Arc<dyn Tool>>, Vec<Warning>) {
    let mut seen = BTreeSet::new();
    let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
    let mut warnings = Vec::new();
    for tool in listed {
        match namespaced(binding.server(), &tool.name) {
            Some(name) if seen.insert(name.clone()) => tools.push(Arc::new(RemoteToolCall {
                name,
                description: truncate_chars(tool.description, MAX_DESCRIPTION),
                parameters: object_schema(tool.parameters),
                remote: tool.name,
                binding: binding.clone(),
            })),
            _ => warnings.push(Warning {
                code: "mcp_tool_skipped".to_owned(),
                message: format!(
                    "MCP server {}: tool {:?} is not offered, its name is empty or clashes \
                     with another once made a valid tool name",
                    binding.server(),
                    tool.name
                ),
            }),
        }
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
