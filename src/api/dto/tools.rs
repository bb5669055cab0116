//! The tools a preset offers (`presets_tools`).

use poem_openapi::{Enum, Object};

use super::events::WarningPayload;
use crate::core::execution::{OfferedTool, OfferedTools, ToolSource};

/// Where a tool comes from.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ToolOrigin {
    /// A built-in toolset.
    Builtin,
    /// `delegate` or `async_delegate`.
    Subagent,
    /// One of the preset's MCP servers (named by `server`).
    Mcp,
}

/// One tool as the model sees it.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct OfferedToolInfo {
    pub name: String,
    pub source: ToolOrigin,
    /// The MCP server, for `source: mcp`.
    pub server: Option<String>,
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// Body of `presets_tools`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct PresetTools {
    /// By name.
    pub tools: Vec<OfferedToolInfo>,
    /// What a run would be warned of: an MCP server that is down, a web service without
    /// its key.
    pub warnings: Vec<WarningPayload>,
}

impl From<OfferedTool> for OfferedToolInfo {
    fn from(t: OfferedTool) -> Self {
        let (source, server) = match t.source {
            ToolSource::Builtin => (ToolOrigin::Builtin, None),
            ToolSource::Subagent => (ToolOrigin::Subagent, None),
            ToolSource::Mcp(server) => (ToolOrigin::Mcp, Some(server)),
        };
        Self {
            name: t.name,
            source,
            server,
            description: t.description,
            parameters: t.parameters,
        }
    }
}

impl From<OfferedTools> for PresetTools {
    fn from(o: OfferedTools) -> Self {
        Self {
            tools: o.tools.into_iter().map(Into::into).collect(),
            warnings: o.warnings.into_iter().map(Into::into).collect(),
        }
    }
}
