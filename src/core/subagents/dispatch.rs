//! `async_delegate`: an async subagent. The tool asks the coordinator (through
//! [`Launcher`]) to start a separate session of type `async_subagent` in the caller's
//! conversation and returns at once; the session runs beside, and may outlive, the caller.
//! The caller's context_state remembers name → latest session, so the next dispatch to the
//! same name continues that subagent's chain.

use async_trait::async_trait;
use ports::{Preset, ToolsetSpec};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

use super::{Builtin, Directory, Source};
use crate::core::tools::{ToolContext, ToolError, ToolOutput, TypedTool};

pub(super) const NAME: &str = "async_delegate";

/// The configuration an async subagent session runs.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchConfig {
    /// A stored preset.
    Preset(String),
    /// A built-in subagent: the caller's preset with the built-in's prompt and toolsets.
    Builtin {
        base_preset: String,
        model: String,
        system_prompt: String,
        toolsets: Vec<ToolsetSpec>,
    },
}

/// One async subagent session to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub conversation_id: String,
    /// The session whose agent dispatched it.
    pub spawned_by: String,
    pub name: String,
    pub config: LaunchConfig,
    /// The subagent's previous session, whose chain this one continues.
    pub previous: Option<String>,
    pub task: String,
}

/// Starts async subagent sessions (the coordinator).
#[async_trait]
pub trait Launcher: Send + Sync {
    /// Starts the session and returns its id.
    ///
    /// # Errors
    /// Why it could not start, worded for the model.
    async fn launch(&self, launch: Launch) -> Result<String, String>;
}

/// Where dispatched sessions go: the launcher and the dispatching session.
#[derive(Clone)]
pub struct Dispatcher {
    pub launcher: Arc<dyn Launcher>,
    pub conversation_id: String,
    pub session_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsyncDelegateArgs {
    /// The subagent's name, from the list in your instructions.
    subagent: String,
    /// What it should do: a self-contained task with everything it needs to know. It
    /// remembers earlier tasks you dispatched to it.
    task: String,
}

/// The `async_delegate` tool of one session's agent.
pub struct AsyncDelegate {
    directory: Directory,
    caller: Preset,
    dispatcher: Dispatcher,
}

impl AsyncDelegate {
    pub fn new(directory: Directory, caller: Preset, dispatcher: Dispatcher) -> Self {
        Self {
            directory,
            caller,
            dispatcher,
        }
    }

    fn config_of(&self, source: &Source) -> LaunchConfig {
        match source {
            Source::Preset(id) => LaunchConfig::Preset(id.clone()),
            Source::Builtin(b) => builtin(*b, &self.caller),
        }
    }
}

fn builtin(b: Builtin, caller: &Preset) -> LaunchConfig {
    LaunchConfig::Builtin {
        base_preset: caller.preset_id.clone(),
        model: caller.model.name.clone(),
        system_prompt: b.system_prompt().to_owned(),
        toolsets: b.toolsets(&caller.toolsets),
    }
}

#[async_trait]
impl TypedTool for AsyncDelegate {
    type Args = AsyncDelegateArgs;
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str = "Start a subagent on a task in the background and \
        continue at once. It works in its own session; its result is delivered to the \
        conversation later, not to this call. Dispatching to the same subagent again \
        continues its earlier work.";

    async fn run(
        &self,
        ctx: &ToolContext<'_>,
        args: AsyncDelegateArgs,
    ) -> Result<ToolOutput, ToolError> {
        let subagent = self.directory.resolve(&args.subagent, &args.task)?;
        let name = subagent.name.clone();
        let previous = ctx.with_scratch(|s| s.async_subagents.get(&name).cloned());
        let launch = Launch {
            conversation_id: self.dispatcher.conversation_id.clone(),
            spawned_by: self.dispatcher.session_id.clone(),
            name: name.clone(),
            config: self.config_of(&subagent.source),
            previous,
            task: args.task,
        };
        let session_id = self
            .dispatcher
            .launcher
            .launch(launch)
            .await
            .map_err(|e| ToolError(format!("could not dispatch to {name:?}: {e}")))?;
        ctx.with_scratch(|s| {
            s.async_subagents.insert(name.clone(), session_id.clone());
        });
        Ok(ToolOutput::text(format!(
            "dispatched to '{name}' (session {session_id})"
        )))
    }
}
