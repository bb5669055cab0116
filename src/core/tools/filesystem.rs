//! `ls` (core) and the filesystem toolset: `mkdir`, `move`, `copy`.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ToolContext, ToolError, ToolOutput, TypedTool};

/// Entries listed at most.
const MAX_ENTRIES: usize = 1000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LsArgs {
    /// Directory to list (default: the working directory).
    #[serde(default)]
    path: Option<String>,
}

pub struct LsTool;

#[async_trait]
impl TypedTool for LsTool {
    type Args = LsArgs;
    const NAME: &'static str = "ls";
    const DESCRIPTION: &'static str = "List a directory: one entry per line, directories \
        ending in `/`, files with their size in bytes.";

    async fn run(&self, ctx: &ToolContext<'_>, args: LsArgs) -> Result<ToolOutput, ToolError> {
        let path = args.path.unwrap_or_else(|| ".".to_owned());
        let entries = ctx.env.workspace.list(&path).await?;
        if entries.is_empty() {
            return Ok(ToolOutput::text(format!("{path} is empty")));
        }
        let mut out = String::new();
        for entry in entries.iter().take(MAX_ENTRIES) {
            if entry.is_dir {
                out.push_str(&format!("{}/\n", entry.name));
            } else {
                out.push_str(&format!("{} ({} bytes)\n", entry.name, entry.size));
            }
        }
        if entries.len() > MAX_ENTRIES {
            out.push_str(&format!(
                "[{} more entries not shown]",
                entries.len() - MAX_ENTRIES
            ));
        }
        Ok(ToolOutput::text(out))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MkdirArgs {
    /// Directory to create; missing parents are created too.
    path: String,
}

pub struct MkdirTool;

#[async_trait]
impl TypedTool for MkdirTool {
    type Args = MkdirArgs;
    const NAME: &'static str = "mkdir";
    const DESCRIPTION: &'static str =
        "Create a directory and any missing parents. An existing directory is not an error.";
    const MUTATES_FILES: bool = true;

    async fn run(&self, ctx: &ToolContext<'_>, args: MkdirArgs) -> Result<ToolOutput, ToolError> {
        ctx.env.workspace.create_dir(&args.path).await?;
        Ok(ToolOutput::text(format!("Created directory {}", args.path)))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferArgs {
    /// Existing file or directory.
    source: String,
    /// New path; it must not exist yet.
    destination: String,
}

pub struct MoveTool;

#[async_trait]
impl TypedTool for MoveTool {
    type Args = TransferArgs;
    const NAME: &'static str = "move";
    const DESCRIPTION: &'static str = "Move or rename a file or directory. The destination \
        must not exist.";
    const MUTATES_FILES: bool = true;

    async fn run(
        &self,
        ctx: &ToolContext<'_>,
        args: TransferArgs,
    ) -> Result<ToolOutput, ToolError> {
        ctx.env
            .workspace
            .rename(&args.source, &args.destination)
            .await?;
        Ok(ToolOutput::text(format!(
            "Moved {} to {}",
            args.source, args.destination
        )))
    }
}

pub struct CopyTool;

#[async_trait]
impl TypedTool for CopyTool {
    type Args = TransferArgs;
    const NAME: &'static str = "copy";
    const DESCRIPTION: &'static str = "Copy a file, or a directory with everything in it. \
        The destination must not exist.";
    const MUTATES_FILES: bool = true;

    async fn run(
        &self,
        ctx: &ToolContext<'_>,
        args: TransferArgs,
    ) -> Result<ToolOutput, ToolError> {
        ctx.env
            .workspace
            .copy(&args.source, &args.destination)
            .await?;
        Ok(ToolOutput::text(format!(
            "Copied {} to {}",
            args.source, args.destination
        )))
    }
}
