//! Subagents (spec 05). `delegate` runs another agent inline, inside the caller's run and
//! environment, and returns its answer; `async_delegate` starts a separate session through
//! the coordinator and returns at once, the result arriving later in the mailbox.
//!
//! Which subagents exist comes from the caller's preset ([`Directory`]); [`equip`] adds the
//! tools and the system-prompt section that introduces them.

mod delegate;
mod directory;
mod dispatch;

use std::sync::Arc;

use ports::{ModelProvider, Preset, PresetRepo};

pub use delegate::Delegate;
pub use directory::{Builtin, Directory, Source, Subagent, offered};
pub use dispatch::{AsyncDelegate, Dispatcher, Launch, LaunchConfig, Launcher};

use crate::core::agent::{RetryPolicy, RunLimits};
use crate::core::prompt::PromptVars;
use crate::core::tools::Toolbox;

/// The toolset name of the subagent tools.
pub const TOOLSET: &str = "subagent";

/// How deep sync subagents nest: the main agent is level 0, and an agent at this level
/// gets no `delegate`, so recursion always ends.
pub const MAX_DEPTH: u32 = 2;

/// What building a nested agent takes, shared by every subagent of a run.
#[derive(Clone)]
pub struct Kit {
    pub presets: Arc<dyn PresetRepo>,
    pub provider: Arc<dyn ModelProvider>,
    pub limits: RunLimits,
    pub retry: RetryPolicy,
    /// The run's prompt variables; model, preset and tool entries are set per subagent.
    pub vars: PromptVars,
}

/// The agent that receives the tools.
pub struct Caller<'a> {
    pub preset: &'a Preset,
    pub agent_id: &'a str,
    /// 0 for the session's own agent.
    pub depth: u32,
}

/// Adds `delegate` (and `async_delegate` when `dispatcher` is given and the preset enables
/// async subagents) to `toolbox`, and returns the system-prompt section introducing the
/// subagents; empty when the caller gets no subagent tool.
pub fn equip(
    toolbox: &mut Toolbox,
    kit: &Kit,
    caller: &Caller<'_>,
    dispatcher: Option<Dispatcher>,
) -> String {
    let directory = Directory::of(&caller.preset.subagents);
    if directory.is_empty() {
        return String::new();
    }
    let mut tools = Vec::new();
    if caller.depth < MAX_DEPTH && offered(caller.preset, delegate::NAME) {
        toolbox.insert(Arc::new(Delegate::new(
            kit.clone(),
            directory.clone(),
            caller.preset.clone(),
            caller.agent_id.to_owned(),
            caller.depth,
        )));
        tools.push(delegate::NAME);
    }
    if let Some(dispatcher) = dispatcher
        .filter(|_| caller.preset.subagents.async_enabled && offered(caller.preset, dispatch::NAME))
    {
        toolbox.insert(Arc::new(AsyncDelegate::new(
            directory.clone(),
            caller.preset.clone(),
            dispatcher,
        )));
        tools.push(dispatch::NAME);
    }
    if tools.is_empty() {
        String::new()
    } else {
        directory.prompt_section(&tools)
    }
}
