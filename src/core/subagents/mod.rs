//! Subagents (spec 05). `delegate` runs another agent inline, inside the caller's run and
//! environment, and returns its answer; `async_delegate` starts a separate session through
//! the run engine and returns at once, the result arriving later in the mailbox.
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
use crate::core::tools::mcp::McpTools;

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
    /// Where a subagent's MCP tools come from (`None`: it gets none).
    pub mcp: Option<McpTools>,
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

/// Whether `tool` is one of the subagent tools.
pub fn is_subagent_tool(tool: &str) -> bool {
    tool == delegate::NAME || tool == dispatch::NAME
}

/// A caller preset `boss` on `test:echo` with these subagents and toolsets, for tests.
#[cfg(test)]
pub(crate) fn boss(subagents: ports::SubagentSpec, toolsets: Vec<ports::ToolsetSpec>) -> Preset {
    let at = ports::now();
    Preset {
        mcp_servers: Vec::new(),
        preset_id: "boss".into(),
        name: "Boss".into(),
        description: None,
        model: ports::ModelSettings {
            name: "test:echo".into(),
            ..Default::default()
        },
        system_prompt: String::new(),
        toolsets,
        environment: ports::EnvironmentSpec::default(),
        subagents,
        tool_config: ports::ToolConfig::default(),
        is_default: false,
        created_at: at,
        updated_at: at,
        limits: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use ports::mocks::{MockModelProvider, MockPresetRepo};
    use ports::{SubagentRef, SubagentSpec, ToolsetSpec};

    use super::*;

    struct NoLaunch;

    #[async_trait::async_trait]
    impl Launcher for NoLaunch {
        async fn launch(&self, _: Launch) -> Result<ports::SessionId, String> {
            Err("not in this test".into())
        }
    }

    fn kit() -> Kit {
        Kit {
            presets: Arc::new(MockPresetRepo::new()),
            provider: Arc::new(MockModelProvider::new()),
            limits: RunLimits::default(),
            retry: RetryPolicy::default(),
            vars: PromptVars::default(),
            mcp: None,
        }
    }

    fn dispatcher() -> Option<Dispatcher> {
        Some(Dispatcher {
            launcher: Arc::new(NoLaunch),
            conversation_id: "c".into(),
            session_id: "s".into(),
        })
    }

    fn preset(async_enabled: bool, toolsets: Vec<ToolsetSpec>) -> Preset {
        boss(
            SubagentSpec {
                include_builtin: false,
                async_enabled,
                refs: vec![SubagentRef {
                    preset_id: "worker".into(),
                    name: "worker".into(),
                    description: "works".into(),
                    instruction: None,
                }],
            },
            toolsets,
        )
    }

    /// The subagent tools `equip` gives, and whether the prompt section was added.
    fn equipped(
        preset: &Preset,
        depth: u32,
        dispatcher: Option<Dispatcher>,
    ) -> (Vec<&'static str>, bool) {
        let mut toolbox = Toolbox::default();
        let caller = Caller {
            preset,
            agent_id: "main",
            depth,
        };
        let section = equip(&mut toolbox, &kit(), &caller, dispatcher);
        let names = toolbox
            .names()
            .into_iter()
            .map(|name| match name {
                delegate::NAME => delegate::NAME,
                dispatch::NAME => dispatch::NAME,
                other => panic!("not a subagent tool: {other}"),
            })
            .collect();
        (names, section.contains("- worker: works"))
    }

    #[test]
    fn delegation_is_bounded_in_depth_and_async_needs_the_flag_and_a_session() {
        let boss = preset(true, vec![]);
        assert_eq!(
            equipped(&boss, 0, dispatcher()),
            (vec!["async_delegate", "delegate"], true)
        );
        assert_eq!(equipped(&boss, 0, None), (vec!["delegate"], true));
        assert_eq!(
            equipped(&boss, MAX_DEPTH - 1, None),
            (vec!["delegate"], true)
        );
        assert_eq!(equipped(&boss, MAX_DEPTH, None), (vec![], false));
        assert_eq!(
            equipped(&preset(false, vec![]), 0, dispatcher()),
            (vec!["delegate"], true)
        );
        let mut none = preset(true, vec![]);
        none.subagents.refs.clear();
        assert_eq!(equipped(&none, 0, dispatcher()), (vec![], false));
    }

    #[test]
    fn a_subagent_toolset_entry_can_switch_the_tools_off() {
        let toolset = |enabled: bool, exclude: &[&str]| ToolsetSpec {
            toolset_name: TOOLSET.into(),
            enabled,
            exclude_tools: exclude.iter().map(|s| (*s).to_owned()).collect(),
        };
        let only_sync = preset(true, vec![toolset(true, &["async_delegate"])]);
        assert_eq!(
            equipped(&only_sync, 0, dispatcher()),
            (vec!["delegate"], true)
        );
        let off = preset(true, vec![toolset(false, &[])]);
        assert_eq!(equipped(&off, 0, dispatcher()), (vec![], false));
    }
}
