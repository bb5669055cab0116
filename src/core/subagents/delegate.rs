//! `delegate`: a sync subagent. The subagent runs as a nested agent loop inside the
//! caller's tool call, in the caller's environment, its events streaming under its own
//! agent id between `subagent_started` and `subagent_completed`. Its history is kept in the
//! caller's context_state by name, so the next delegation to it continues the same
//! conversation. Calls to one name are serialized: they share that history.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use ports::{
    AssistantPart, EventPayload, ModelMessage, Preset, SessionState, StorageError,
    SubagentCompleted, SubagentStarted, ToolCallStatus, UserPart, Warning,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Caller, Directory, Kit, Source, equip};
use crate::core::agent::{Agent, AgentSpec, Deferral, RunEnd, RunLimits};
use crate::core::prompt;
use crate::core::tools::{
    Tool, ToolContext, ToolError, ToolOutput, Toolbox, TypedTool, WebServices,
};

pub(super) const NAME: &str = "delegate";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateArgs {
    /// The subagent's name, from the list in your instructions.
    subagent: String,
    /// What it should do: a self-contained task with everything it needs to know. It
    /// remembers earlier tasks you gave it.
    task: String,
}

/// The `delegate` tool of one agent.
pub struct Delegate {
    kit: Kit,
    directory: Directory,
    /// The calling agent's preset: built-in subagents run on its model and toolsets.
    caller: Preset,
    /// The calling agent's id: it emits the subagent's start and end.
    agent_id: String,
    depth: u32,
    /// One lock per subagent name: a name's calls share its history.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Delegate {
    pub fn new(
        kit: Kit,
        directory: Directory,
        caller: Preset,
        agent_id: String,
        depth: u32,
    ) -> Self {
        Self {
            kit,
            directory,
            caller,
            agent_id,
            depth,
            locks: Mutex::default(),
        }
    }

    fn lock_for(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// The subagent's agent id: its name under the main agent, a path below that, so ids
    /// stay unique through nesting.
    fn subagent_id(&self, name: &str) -> String {
        if self.depth == 0 {
            name.to_owned()
        } else {
            format!("{}/{name}", self.agent_id)
        }
    }

    /// The preset the subagent runs: its own, or the caller's reshaped for a built-in.
    async fn preset_of(&self, name: &str, source: &Source) -> Result<Preset, ToolError> {
        match source {
            Source::Preset(id) => match self.kit.presets.get_preset(id).await {
                Ok(preset) => Ok(preset),
                Err(StorageError::NotFound) => Err(ToolError(format!(
                    "subagent {name} cannot run: its preset {id} no longer exists"
                ))),
                Err(e) => Err(ToolError(format!(
                    "subagent {name} cannot run: loading its preset failed: {e}"
                ))),
            },
            Source::Builtin(b) => Ok(Preset {
                system_prompt: b.system_prompt().to_owned(),
                toolsets: b.toolsets(&self.caller.toolsets),
                subagents: ports::SubagentSpec::default(),
                ..self.caller.clone()
            }),
        }
    }

    /// The tools of the subagent's MCP servers, and warnings for those that are down.
    async fn mcp_tools(&self, preset: &Preset) -> (Vec<Arc<dyn Tool>>, Vec<Warning>) {
        match &self.kit.mcp {
            Some(mcp) if !preset.mcp_servers.is_empty() => mcp.of(preset).await,
            _ => (Vec::new(), Vec::new()),
        }
    }

    /// Everything the nested agent needs, resolved from its preset.
    async fn spec_of(
        &self,
        preset: &Preset,
        agent_id: String,
        services: WebServices,
        mcp_tools: Vec<Arc<dyn Tool>>,
    ) -> Result<AgentSpec, ToolError> {
        let mut toolbox = Toolbox::from_toolsets(&preset.toolsets, services);
        for tool in mcp_tools {
            toolbox.insert(tool);
        }
        let caller = Caller {
            preset,
            agent_id: &agent_id,
            depth: self.depth + 1,
        };
        let section = equip(&mut toolbox, &self.kit, &caller, None);
        let mut vars = self.kit.vars.clone();
        vars.model.clone_from(&preset.model.name);
        vars.preset_id = preset.preset_id.to_string();
        vars.toolsets = preset
            .toolsets
            .iter()
            .filter(|t| t.enabled)
            .map(|t| t.toolset_name.clone())
            .collect();
        vars.tools = toolbox.names().into_iter().map(str::to_owned).collect();
        let system = prompt::render(preset.system_prompt.clone(), vars)
            .await
            .map_err(|e| {
                ToolError(format!(
                    "the subagent's system prompt (preset {}) does not render: {e}",
                    preset.preset_id
                ))
            })?;
        Ok(AgentSpec {
            agent_id,
            model: preset.model.clone(),
            system_prompt: system + &section,
            toolbox,
            // Its own caps, but not a clock of its own: the run's deadline interrupts it
            // with the rest of the run.
            limits: RunLimits {
                max_duration_secs: None,
                ..preset.limits.or(self.kit.limits)
            },
            retry: self.kit.retry,
            deferral: Deferral::of(preset, Vec::new(), true),
        })
    }
}

#[async_trait]
impl TypedTool for Delegate {
    type Args = DelegateArgs;
    const NAME: &'static str = NAME;
    // The nested agent follows the run's interrupt and returns at once; letting it finish
    // keeps its history and closes its block in the transcript.
    const FINISHES_ON_INTERRUPT: bool = true;
    const DESCRIPTION: &'static str = "Hand a task to a subagent and wait for its answer. \
        The subagent works in the same environment with its own tools and remembers the \
        earlier tasks you gave it. Its final answer is returned to you.";

    async fn run(
        &self,
        ctx: &ToolContext<'_>,
        args: DelegateArgs,
    ) -> Result<ToolOutput, ToolError> {
        let subagent = self.directory.resolve(&args.subagent, &args.task)?;
        let name = subagent.name.clone();
        let lock = self.lock_for(&name);
        let _busy = lock.lock().await;
        let preset = self.preset_of(&name, &subagent.source).await?;
        let agent_id = self.subagent_id(&name);
        let (mcp_tools, warnings) = self.mcp_tools(&preset).await;
        let spec = self
            .spec_of(
                &preset,
                agent_id.clone(),
                WebServices::of(&ctx.env),
                mcp_tools,
            )
            .await?;
        let history = ctx
            .with_scratch(|s| s.subagent_histories.get(&name).cloned())
            .unwrap_or_default();

        ctx.sink.emit(
            &self.agent_id,
            EventPayload::SubagentStarted(SubagentStarted {
                subagent_name: name.clone(),
                subagent_agent_id: agent_id.clone(),
            }),
        );
        for warning in warnings {
            ctx.sink.emit(&agent_id, EventPayload::Warning(warning));
        }
        let agent = Agent::new(self.kit.provider.clone(), ctx.env.clone(), spec);
        let state = SessionState {
            message_history: history,
            ..SessionState::default()
        };
        let task = vec![UserPart::Text { text: args.task }];
        let out = agent
            .run(state, task, &ctx.control.nested(), ctx.sink)
            .await;
        let answer = final_text(&out.state.message_history);
        ctx.with_scratch(|s| {
            s.subagent_histories
                .insert(name.clone(), out.state.message_history);
            s.nested_usage.add(&out.usage);
        });

        let (status, result) = verdict(out.end, answer, &name);
        ctx.sink.emit(
            &self.agent_id,
            EventPayload::SubagentCompleted(SubagentCompleted {
                subagent_name: name,
                subagent_agent_id: agent_id,
                status,
                result: Some(match &result {
                    Ok(text) | Err(text) => text.clone(),
                }),
            }),
        );
        result.map(ToolOutput::text).map_err(ToolError)
    }
}

/// The text of the last assistant message: the subagent's answer.
pub(crate) fn final_text(history: &[ModelMessage]) -> String {
    history
        .iter()
        .rev()
        .find_map(|m| match m {
            ModelMessage::Assistant { parts } => {
                let text = AssistantPart::text_of(parts);
                (!text.is_empty()).then_some(text)
            }
            _ => None,
        })
        .unwrap_or_else(|| "(the subagent gave no answer)".to_owned())
}

/// What the caller's tool call says about the subagent's run: its status and the text the
/// caller's model reads (the answer, or why there is none).
fn verdict(end: RunEnd, answer: String, name: &str) -> (ToolCallStatus, Result<String, String>) {
    match end {
        RunEnd::Completed | RunEnd::AwaitingToolResults { .. } => {
            (ToolCallStatus::Success, Ok(answer))
        }
        RunEnd::LimitReached { message, .. } => (
            ToolCallStatus::Success,
            Ok(format!(
                "{answer}\n\n[the subagent stopped early: {message}]"
            )),
        ),
        RunEnd::Interrupted { .. } => (
            ToolCallStatus::Cancelled,
            Err(format!("subagent {name} was interrupted")),
        ),
        RunEnd::Failed { code, message } => (
            ToolCallStatus::Error,
            Err(format!("subagent {name} failed ({code}): {message}")),
        ),
    }
}
