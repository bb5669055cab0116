//! The context toolset: `thinking` (a scratchpad with no side effects) and `handoff`
//! (summarize, then restart the context from the summary after this step).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ToolContext, ToolError, ToolOutput, TypedTool};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThinkingArgs {
    /// Your reasoning, plan or notes.
    thought: String,
}

pub struct ThinkingTool;

#[async_trait]
impl TypedTool for ThinkingTool {
    type Args = ThinkingArgs;
    const NAME: &'static str = "thinking";
    const DESCRIPTION: &'static str = "Think out loud: write down reasoning or a plan before \
        acting. Has no side effects.";

    async fn run(&self, _: &ToolContext<'_>, args: ThinkingArgs) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text(format!(
            "Noted ({} characters).",
            args.thought.chars().count()
        )))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffArgs {
    /// Everything needed to carry on: the goal, what is done, what remains, key facts,
    /// file paths. The earlier conversation is dropped after this call.
    summary: String,
}

pub struct HandoffTool;

#[async_trait]
impl TypedTool for HandoffTool {
    type Args = HandoffArgs;
    const NAME: &'static str = "handoff";
    const DESCRIPTION: &'static str = "Restart with a fresh context: write a complete summary \
        of the task and its state; after this step the conversation so far is replaced by \
        that summary. Use when the context is long or cluttered.";

    async fn run(&self, ctx: &ToolContext<'_>, args: HandoffArgs) -> Result<ToolOutput, ToolError> {
        if args.summary.trim().is_empty() {
            return Err(ToolError("summary is empty".into()));
        }
        ctx.with_scratch(|s| s.handoff = Some(args.summary));
        Ok(ToolOutput::text(
            "Handoff recorded: the context restarts from your summary after this step.",
        ))
    }
}
