//! What a preset offers its agent right now (`GET /api/presets/{id}/tools`): the same
//! toolbox a run gets, MCP servers connected, for UIs and for debugging a preset.

use std::sync::Arc;

use ports::{ConversationId, Preset, PresetId, SessionId, StorageError, Warning};

use super::engine::RunEngine;
use super::launch::EngineLauncher;
use super::request::RunError;
use crate::core::prompt::PromptVars;
use crate::core::subagents::{self, Dispatcher};
use crate::core::tools::{WebServices, mcp};

/// Where an offered tool comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolSource {
    /// A built-in toolset.
    Builtin,
    /// The subagent tools (`delegate`, `async_delegate`).
    Subagent,
    /// The preset's MCP server of this name.
    Mcp(String),
}

/// One tool as the model would see it.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedTool {
    pub name: String,
    pub source: ToolSource,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A preset's tools, and what a run would be warned of.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OfferedTools {
    pub tools: Vec<OfferedTool>,
    pub warnings: Vec<Warning>,
}

impl RunEngine {
    /// Every tool a run of the preset would be offered now.
    ///
    /// # Errors
    /// `NotFound("preset")`, or storage errors.
    pub async fn offered_tools(
        self: &Arc<Self>,
        preset_id: &PresetId,
    ) -> Result<OfferedTools, RunError> {
        let preset = match self.ports.presets.get_preset(preset_id).await {
            Err(StorageError::NotFound) => return Err(RunError::NotFound("preset")),
            other => other?,
        };
        let services = WebServices {
            search: self.ports.search.is_some(),
            scrape: self.ports.scraper.is_some(),
        };
        let (mcp_tools, mut warnings) = self.mcp_tools(&preset).await;
        // Never called: the dispatcher only lets the listing include `async_delegate`.
        let session_id = SessionId::generate();
        let dispatcher = Dispatcher {
            launcher: Arc::new(EngineLauncher::new(self)),
            conversation_id: ConversationId::rooted_at(&session_id),
            session_id,
        };
        let (toolbox, _) = self.toolbox(
            &preset,
            services,
            mcp_tools,
            PromptVars::default(),
            Some(dispatcher),
        );
        warnings.extend(services.missing(&preset.toolsets));
        let tools = toolbox
            .schemas()
            .into_iter()
            .map(|schema| OfferedTool {
                source: source_of(&preset, &schema.name),
                name: schema.name,
                description: schema.description,
                parameters: schema.parameters,
            })
            .collect();
        Ok(OfferedTools { tools, warnings })
    }
}

fn source_of(preset: &Preset, tool: &str) -> ToolSource {
    if let Some((server, _)) = tool.split_once(mcp::SEPARATOR)
        && preset.mcp_servers.iter().any(|s| s.name == server)
    {
        return ToolSource::Mcp(server.to_owned());
    }
    if subagents::is_subagent_tool(tool) {
        ToolSource::Subagent
    } else {
        ToolSource::Builtin
    }
}
