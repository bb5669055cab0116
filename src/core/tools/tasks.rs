//! The task toolset: a task list the agent keeps for itself, stored in `context_state`
//! so it survives into continued sessions.

use async_trait::async_trait;
use ports::{Task, TaskStatus};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ToolContext, ToolError, ToolOutput, TypedTool};

fn render(task: &Task) -> String {
    serde_json::to_string(task).unwrap_or_else(|_| task.id.clone())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskCreateArgs {
    /// Short imperative title.
    subject: String,
    /// Details, acceptance criteria.
    #[serde(default)]
    description: String,
}

pub struct TaskCreateTool;

#[async_trait]
impl TypedTool for TaskCreateTool {
    type Args = TaskCreateArgs;
    const NAME: &'static str = "task_create";
    const DESCRIPTION: &'static str = "Add a task to your task list (status pending). Use \
        the list to plan multi-step work and track progress. Returns the task with its id.";

    async fn run(
        &self,
        ctx: &ToolContext<'_>,
        args: TaskCreateArgs,
    ) -> Result<ToolOutput, ToolError> {
        let task = ctx.with_scratch(|s| {
            let next = s
                .tasks
                .iter()
                .filter_map(|t| t.id.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
                + 1;
            let task = Task {
                id: next.to_string(),
                subject: args.subject,
                description: args.description,
                status: TaskStatus::Pending,
            };
            s.tasks.push(task.clone());
            task
        });
        Ok(ToolOutput::text(render(&task)))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskUpdateArgs {
    /// Id returned by task_create.
    id: String,
    #[serde(default)]
    status: Option<TaskStatus>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

pub struct TaskUpdateTool;

#[async_trait]
impl TypedTool for TaskUpdateTool {
    type Args = TaskUpdateArgs;
    const NAME: &'static str = "task_update";
    const DESCRIPTION: &'static str = "Change a task's status (pending, in_progress, \
        completed), subject or description. Returns the updated task.";

    async fn run(
        &self,
        ctx: &ToolContext<'_>,
        args: TaskUpdateArgs,
    ) -> Result<ToolOutput, ToolError> {
        ctx.with_scratch(|s| {
            let task = s
                .tasks
                .iter_mut()
                .find(|t| t.id == args.id)
                .ok_or_else(|| ToolError(format!("no task with id {}", args.id)))?;
            if let Some(status) = args.status {
                task.status = status;
            }
            if let Some(subject) = args.subject {
                task.subject = subject;
            }
            if let Some(description) = args.description {
                task.description = description;
            }
            Ok(ToolOutput::text(render(task)))
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

pub struct TaskListTool;

#[async_trait]
impl TypedTool for TaskListTool {
    type Args = NoArgs;
    const NAME: &'static str = "task_list";
    const DESCRIPTION: &'static str = "Show every task with its id and status.";

    async fn run(&self, ctx: &ToolContext<'_>, _: NoArgs) -> Result<ToolOutput, ToolError> {
        let text = ctx.with_scratch(|s| {
            if s.tasks.is_empty() {
                return "no tasks".to_owned();
            }
            s.tasks
                .iter()
                .map(|t| {
                    let status = match t.status {
                        TaskStatus::Pending => "pending",
                        TaskStatus::InProgress => "in_progress",
                        TaskStatus::Completed => "completed",
                    };
                    format!("{}. [{status}] {}", t.id, t.subject)
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        Ok(ToolOutput::text(text))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskGetArgs {
    /// Id returned by task_create.
    id: String,
}

pub struct TaskGetTool;

#[async_trait]
impl TypedTool for TaskGetTool {
    type Args = TaskGetArgs;
    const NAME: &'static str = "task_get";
    const DESCRIPTION: &'static str = "Show one task in full, description included.";

    async fn run(&self, ctx: &ToolContext<'_>, args: TaskGetArgs) -> Result<ToolOutput, ToolError> {
        ctx.with_scratch(|s| {
            s.tasks
                .iter()
                .find(|t| t.id == args.id)
                .map(|t| ToolOutput::text(render(t)))
                .ok_or_else(|| ToolError(format!("no task with id {}", args.id)))
        })
    }
}
