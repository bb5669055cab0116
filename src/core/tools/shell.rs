//! `shell`: one command through the shell port, in the environment's working directory,
//! with the run's environment variables only, a timeout and capped output.

use std::time::Duration;

use async_trait::async_trait;
use ports::{ShellError, ShellRequest};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolContext, ToolError, ToolOutput, TypedTool};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellArgs {
    /// The command line, run by bash.
    command: String,
    /// Directory to run in (default: the working directory).
    #[serde(default)]
    cwd: Option<String>,
    /// Seconds before the command and everything it started are killed (default 120,
    /// at most 600).
    #[serde(default)]
    timeout_secs: Option<u64>,
}

/// What the model gets back.
#[derive(Debug, Serialize)]
struct ShellReport {
    exit_code: Option<i32>,
    stdout: String,
    stderr: String,
    stdout_truncated: bool,
    stderr_truncated: bool,
    timed_out: bool,
}

pub struct ShellTool;

#[async_trait]
impl TypedTool for ShellTool {
    type Args = ShellArgs;
    const NAME: &'static str = "shell";
    const DESCRIPTION: &'static str = "Run a shell command (bash) and get its exit code, \
        stdout and stderr as JSON. Output beyond the cap is cut and flagged. Commands are \
        killed, with everything they started, after `timeout_secs`. No interactive input.";

    async fn run(&self, ctx: &ToolContext<'_>, args: ShellArgs) -> Result<ToolOutput, ToolError> {
        let env = &ctx.env;
        let cwd = env
            .workspace
            .shell_dir(args.cwd.as_deref().unwrap_or("."))
            .await?;
        let timeout = args
            .timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(env.limits.default_timeout)
            .min(env.limits.max_timeout);
        let out = env
            .shell
            .run(ShellRequest {
                command: args.command,
                cwd,
                env: env.command_vars.clone(),
                timeout,
                output_cap: env.limits.output_cap,
            })
            .await
            .map_err(|e| match e {
                ShellError::Spawn(msg) => ToolError(format!("could not run the command: {msg}")),
                ShellError::Other(e) => ToolError(format!("shell failure: {e}")),
            })?;
        let timed_out = out.timed_out;
        let report = ShellReport {
            exit_code: out.exit_code,
            stdout: out.stdout,
            stderr: out.stderr,
            stdout_truncated: out.stdout_truncated,
            stderr_truncated: out.stderr_truncated,
            timed_out,
        };
        let mut text = serde_json::to_string(&report)
            .map_err(|e| ToolError(format!("could not encode the output: {e}")))?;
        if timed_out {
            text.push_str(&format!("\n[killed after {} s timeout]", timeout.as_secs()));
        }
        Ok(ToolOutput::text(text))
    }
}
