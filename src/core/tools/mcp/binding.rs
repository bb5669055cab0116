//! One server of one run's preset: how to reach it, and how its answers read to the model.

use std::sync::Arc;
use std::time::Duration;

use ports::{
    MCP_DEFAULT_TIMEOUT_SECS, McpServerSpec, McpToolFilter, RemoteTool, RemoteToolResult,
    ServerKey, ServerLaunch, ToolServerError, ToolServers,
};
use serde_json::{Map, Value};

use crate::core::tools::{ToolError, ToolOutput};

/// A server as the run's tools call it.
pub struct Binding {
    servers: Arc<dyn ToolServers>,
    key: ServerKey,
    launch: ServerLaunch,
    filter: McpToolFilter,
    timeout: Duration,
}

impl Binding {
    pub fn new(
        servers: Arc<dyn ToolServers>,
        key: ServerKey,
        launch: ServerLaunch,
        spec: &McpServerSpec,
    ) -> Self {
        Self {
            servers,
            key,
            launch,
            filter: spec.tools.clone(),
            timeout: Duration::from_secs(u64::from(
                spec.timeout_secs.unwrap_or(MCP_DEFAULT_TIMEOUT_SECS),
            )),
        }
    }

    /// The server's name in the preset (the prefix of its tools).
    pub fn server(&self) -> &str {
        &self.key.server
    }

    /// The tools the preset admits, as the server lists them now.
    pub async fn list(&self) -> Result<Vec<RemoteTool>, ToolServerError> {
        let mut tools = self.servers.tools(&self.key, &self.launch).await?;
        tools.retain(|t| self.filter.admits(&t.name));
        Ok(tools)
    }

    pub fn admits(&self, tool: &str) -> bool {
        self.filter.admits(tool)
    }

    /// Calls `tool` (the server's name for it) with the model's argument JSON.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
    ) -> Result<ToolOutput, ToolError> {
        let result = self
            .servers
            .call(&self.key, &self.launch, tool, arguments, self.timeout)
            .await
            .map_err(|e| ToolError(format!("MCP server {}: {e}", self.key.server)))?;
        output_of(result)
    }
}

/// The model's argument text as the object MCP wants; empty means no arguments.
pub fn arguments(text: &str) -> Result<Map<String, Value>, ToolError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ToolError("the arguments must be a JSON object".into())),
        Err(e) => Err(ToolError(format!("the arguments are not valid JSON: {e}"))),
    }
}

/// A server's result as the model reads it: the text and the images; the structured
/// content only when there is no text, for MCP asks servers to send it serialized as text
/// too (FastMCP sends `42` beside `{"result": 42}`).
fn output_of(result: RemoteToolResult) -> Result<ToolOutput, ToolError> {
    let RemoteToolResult {
        mut text,
        images,
        structured,
        is_error,
    } = result;
    if let Some(structured) = structured.filter(|_| text.is_empty()) {
        text = structured.to_string();
    }
    if is_error {
        if text.is_empty() {
            text = "the tool reported an error and said nothing more".to_owned();
        }
        return Err(ToolError(text));
    }
    if text.is_empty() && images.is_empty() {
        text = "(no output)".to_owned();
    }
    Ok(ToolOutput {
        content: text,
        images,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn result(text: &str, structured: Option<Value>, is_error: bool) -> RemoteToolResult {
        RemoteToolResult {
            text: text.to_owned(),
            images: Vec::new(),
            structured,
            is_error,
        }
    }

    #[test]
    fn structured_content_is_read_only_when_there_is_no_text() {
        let out = output_of(result("5", Some(json!({"result": 5})), false));
        assert_eq!(out.unwrap().content, "5");
        let out = output_of(result("", Some(json!([1, 2])), false));
        assert_eq!(out.unwrap().content, "[1,2]");
    }

    #[test]
    fn an_error_result_is_a_tool_error_with_its_text() {
        assert_eq!(
            output_of(result("disk full", None, true)),
            Err(ToolError("disk full".into()))
        );
        assert!(
            output_of(result("", None, true))
                .unwrap_err()
                .0
                .contains("error")
        );
        assert_eq!(
            output_of(result("", None, false)).unwrap().content,
            "(no output)"
        );
    }

    #[test]
    fn arguments_must_be_an_object() {
        assert_eq!(arguments("").unwrap(), Map::new());
        assert_eq!(arguments(" {\"a\": 1} ").unwrap()["a"], 1);
        assert!(arguments("[1]").is_err());
        assert!(arguments("{").is_err());
    }
}
