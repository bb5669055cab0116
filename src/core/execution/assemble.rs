//! Assembling a run's agent from its resolved preset: the toolbox with the subagent tools,
//! the rendered system prompt with the subagents' section, and which calls are deferred.

use std::sync::Arc;

use ports::{ConversationId, MAIN_AGENT, Preset, SessionId, SessionType, ToolSchema, now};

use super::engine::RunEngine;
use super::launch::EngineLauncher;
use super::request::RunError;
use crate::core::agent::{Agent, AgentSpec, Deferral};
use crate::core::environment::Environment;
use crate::core::prompt::{self, PromptVars};
use crate::core::subagents::{self, Caller, Dispatcher, Kit};
use crate::core::tools::{Tool, Toolbox, WebServices};

/// What the agent of one session is made from.
pub(super) struct AgentPlan<'a> {
    pub preset: &'a Preset,
    pub env: Arc<Environment>,
    pub session_id: &'a SessionId,
    pub conversation_id: &'a ConversationId,
    pub session_type: SessionType,
    pub external_tools: Vec<ToolSchema>,
    /// The tools of the preset's MCP servers that answered.
    pub mcp_tools: Vec<Arc<dyn Tool>>,
    /// The request field the template came from, for a render error: `system_prompt`, or
    /// `config_override.system_prompt` when the run's override replaced it.
    pub prompt_field: &'static str,
}

impl RunEngine {
    /// The session's agent.
    ///
    /// # Errors
    /// The system prompt does not render within its bounds (422 on `plan.prompt_field`).
    pub(super) async fn assemble(self: &Arc<Self>, plan: AgentPlan<'_>) -> Result<Agent, RunError> {
        let AgentPlan {
            preset,
            env,
            session_id,
            conversation_id,
            session_type,
            external_tools,
            mcp_tools,
            prompt_field,
        } = plan;
        let mut vars = PromptVars {
            cwd: env.workspace.working_dir(),
            date: now().format("%Y-%m-%d").to_string(),
            datetime: now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            toolsets: preset
                .toolsets
                .iter()
                .filter(|t| t.enabled)
                .map(|t| t.toolset_name.clone())
                .collect(),
            tools: Vec::new(),
            model: preset.model.name.clone(),
            preset_id: preset.preset_id.to_string(),
            session_id: session_id.to_string(),
            conversation_id: conversation_id.to_string(),
        };
        // Async subagents dispatch no subagents of their own: their outcomes go to the
        // conversation's mailbox, which only the conversation's agent is fired with.
        let dispatcher = (session_type == SessionType::Agent).then(|| Dispatcher {
            launcher: Arc::new(EngineLauncher::new(self)),
            conversation_id: conversation_id.clone(),
            session_id: session_id.clone(),
        });
        let (toolbox, section) = self.toolbox(
            preset,
            WebServices::of(&env),
            mcp_tools,
            vars.clone(),
            dispatcher,
        );
        vars.tools = toolbox.names().into_iter().map(str::to_owned).collect();
        let system_prompt = prompt::render(preset.system_prompt.clone(), vars)
            .await
            .map_err(|m| RunError::invalid(prompt_field, m))?
            + &section;
        Ok(Agent::new(
            self.ports.provider.clone(),
            env,
            AgentSpec {
                agent_id: MAIN_AGENT.to_owned(),
                model: preset.model.clone(),
                system_prompt,
                toolbox,
                limits: preset.limits.or(self.settings.limits),
                retry: self.settings.retry,
                deferral: Deferral::of(preset, external_tools, false),
            },
        ))
    }

    /// The tools of an agent running `preset`, and the system-prompt section introducing
    /// its subagents.
    pub(super) fn toolbox(
        &self,
        preset: &Preset,
        services: WebServices,
        mcp_tools: Vec<Arc<dyn Tool>>,
        vars: PromptVars,
        dispatcher: Option<Dispatcher>,
    ) -> (Toolbox, String) {
        let mut toolbox = Toolbox::from_toolsets(&preset.toolsets, services);
        for tool in mcp_tools {
            toolbox.insert(tool);
        }
        let kit = Kit {
            presets: self.ports.presets.clone(),
            provider: self.ports.provider.clone(),
            limits: self.settings.limits,
            retry: self.settings.retry,
            vars,
            mcp: Some(self.mcp()),
        };
        let caller = Caller {
            preset,
            agent_id: MAIN_AGENT,
            depth: 0,
        };
        let section = subagents::equip(&mut toolbox, &kit, &caller, dispatcher);
        (toolbox, section)
    }
}
