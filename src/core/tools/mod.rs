//! The built-in toolsets (spec 03). Every tool has a JSON schema generated from its
//! argument type and a description written for the model; tools act only through the
//! [`Environment`] (workspace port, shell port), so they work the same in local and docker
//! mode. A tool failure is an `Err(ToolError)` that the loop returns to the model as an
//! error result: it never fails the run.

mod context;
mod edit;
mod filesystem;
pub mod mcp;
mod output;
mod search;
mod shell;
mod tasks;
mod toolbox;
mod view;
mod web;
mod web_services;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ports::{ImageData, ModelMessage, Task, Usage, WorkspaceError};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use super::environment::Environment;
use super::run::{EventSink, RunControl};

pub use output::{MAX_RESULT_CHARS, truncate_chars};
pub use toolbox::{Toolbox, WebServices};

/// What a tool hands back to the model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolOutput {
    pub content: String,
    pub images: Vec<ImageData>,
}

impl ToolOutput {
    /// A text-only output.
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            images: Vec::new(),
        }
    }
}

/// A failure the model can read and react to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl From<WorkspaceError> for ToolError {
    fn from(e: WorkspaceError) -> Self {
        Self(e.to_string())
    }
}

/// State a run's tools share with the loop: the parts of `context_state` tools change.
#[derive(Debug, Default)]
pub struct Scratch {
    pub tasks: Vec<Task>,
    /// Set by `handoff`: the loop restarts the context from this summary after the step.
    pub handoff: Option<String>,
    /// Sync subagent histories by name (`delegate` continues them).
    pub subagent_histories: BTreeMap<String, Vec<ModelMessage>>,
    /// Async subagent name → its latest session (`async_delegate` continues the chain).
    pub async_subagents: BTreeMap<String, ports::SessionId>,
    /// What nested agents used; the loop adds it to the run's usage after the step.
    pub nested_usage: Usage,
}

impl Scratch {
    /// Takes the parts of `context` the tools change.
    pub fn take_from(context: &mut ports::ContextState) -> Self {
        Self {
            tasks: std::mem::take(&mut context.tasks),
            handoff: None,
            subagent_histories: std::mem::take(&mut context.subagent_histories),
            async_subagents: std::mem::take(&mut context.async_subagents),
            nested_usage: Usage::default(),
        }
    }

    /// Puts the tools' parts back into `context`; returns what nested agents used.
    pub fn restore_into(self, context: &mut ports::ContextState) -> Usage {
        context.tasks = self.tasks;
        context.subagent_histories = self.subagent_histories;
        context.async_subagents = self.async_subagents;
        self.nested_usage
    }
}

/// Everything a tool call may use.
pub struct ToolContext<'a> {
    pub env: Arc<Environment>,
    pub scratch: Arc<Mutex<Scratch>>,
    /// The run's control: a nested agent stops when the run is interrupted.
    pub control: &'a RunControl,
    /// The run's events: a nested agent streams into them under its own agent id.
    pub sink: &'a dyn EventSink,
}

impl ToolContext<'_> {
    /// Runs `f` on the shared scratch state. A poisoned lock (a panicking tool) is recovered:
    /// the data is plain values and stays consistent.
    pub fn with_scratch<R>(&self, f: impl FnOnce(&mut Scratch) -> R) -> R {
        let mut guard = self
            .scratch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

/// A tool as the loop sees it.
#[async_trait]
pub trait Tool: Send + Sync {
    fn name(&self) -> &str;
    fn description(&self) -> &str;
    /// JSON schema of the arguments object.
    fn parameters(&self) -> serde_json::Value;
    /// Tools that change files run one at a time, in the order the model called them;
    /// the others run concurrently.
    fn mutates_files(&self) -> bool;
    /// Tools that stop promptly on the run's interrupt by themselves (a nested agent) are
    /// let finish, so they can record what they did; the others are dropped at once.
    fn finishes_on_interrupt(&self) -> bool {
        false
    }
    /// Runs the call with the raw argument JSON the model produced.
    async fn call(&self, ctx: &ToolContext<'_>, arguments: &str) -> Result<ToolOutput, ToolError>;
}

/// A tool with typed arguments; the schema and the parsing come from the type.
#[async_trait]
pub trait TypedTool: Send + Sync {
    type Args: JsonSchema + DeserializeOwned + Send;
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    const MUTATES_FILES: bool = false;
    const FINISHES_ON_INTERRUPT: bool = false;
    async fn run(&self, ctx: &ToolContext<'_>, args: Self::Args) -> Result<ToolOutput, ToolError>;
}

#[async_trait]
impl<T: TypedTool> Tool for T {
    fn name(&self) -> &str {
        T::NAME
    }

    fn description(&self) -> &str {
        T::DESCRIPTION
    }

    fn parameters(&self) -> serde_json::Value {
        schema_of::<T::Args>()
    }

    fn mutates_files(&self) -> bool {
        T::MUTATES_FILES
    }

    fn finishes_on_interrupt(&self) -> bool {
        T::FINISHES_ON_INTERRUPT
    }

    async fn call(&self, ctx: &ToolContext<'_>, arguments: &str) -> Result<ToolOutput, ToolError> {
        let text = if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        };
        let args: T::Args = serde_json::from_str(text)
            .map_err(|e| ToolError(format!("invalid arguments for {}: {e}", T::NAME)))?;
        self.run(ctx, args).await
    }
}

/// The JSON schema of an argument type, without the `$schema` key providers reject.
pub fn schema_of<A: JsonSchema>() -> serde_json::Value {
    let mut value = schemars::schema_for!(A).to_value();
    if let Some(map) = value.as_object_mut() {
        map.remove("$schema");
        map.remove("title");
    }
    value
}
