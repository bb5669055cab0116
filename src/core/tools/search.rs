//! `glob` and `grep`: gitignore-aware search through the workspace port, bounded output.

use async_trait::async_trait;
use ports::GrepRequest;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{MAX_RESULT_CHARS, ToolContext, ToolError, ToolOutput, TypedTool, truncate_chars};

const GLOB_LIMIT: usize = 1000;
const GREP_DEFAULT: usize = 200;
const GREP_MAX: usize = 1000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobArgs {
    /// Glob such as `**/*.rs` or `src/*.md`, matched against paths relative to `path`.
    pattern: String,
    /// Directory to search (default: the working directory).
    #[serde(default)]
    path: Option<String>,
}

pub struct GlobTool;

#[async_trait]
impl TypedTool for GlobTool {
    type Args = GlobArgs;
    const NAME: &'static str = "glob";
    const DESCRIPTION: &'static str = "Find files by glob pattern (`**/*.rs`, `docs/*.md`). \
        Files ignored by .gitignore are skipped. Returns at most 1000 paths, sorted.";

    async fn run(&self, ctx: &ToolContext<'_>, args: GlobArgs) -> Result<ToolOutput, ToolError> {
        let base = args.path.unwrap_or_else(|| ".".to_owned());
        let found = ctx
            .env
            .workspace
            .glob(&args.pattern, &base, GLOB_LIMIT)
            .await?;
        if found.paths.is_empty() {
            return Ok(ToolOutput::text(format!(
                "no files match {} under {base}",
                args.pattern
            )));
        }
        let mut out = found.paths.join("\n");
        if found.truncated {
            out.push_str(&format!(
                "\n[more than {GLOB_LIMIT} files match; narrow the pattern]"
            ));
        }
        Ok(ToolOutput::text(truncate_chars(out, MAX_RESULT_CHARS)))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrepArgs {
    /// Regular expression (Rust regex syntax).
    pattern: String,
    /// File or directory to search (default: the working directory).
    #[serde(default)]
    path: Option<String>,
    /// Only search files matching this glob, e.g. `*.py`.
    #[serde(default)]
    include: Option<String>,
    /// Ignore case.
    #[serde(default)]
    case_insensitive: bool,
    /// Matching lines returned at most (default 200, at most 1000).
    #[serde(default)]
    max_matches: Option<usize>,
}

pub struct GrepTool;

#[async_trait]
impl TypedTool for GrepTool {
    type Args = GrepArgs;
    const NAME: &'static str = "grep";
    const DESCRIPTION: &'static str = "Search file contents with a regular expression. \
        Prints `path:line: text` per matching line. Files ignored by .gitignore and binary \
        files are skipped. Narrow with `path` and `include`.";

    async fn run(&self, ctx: &ToolContext<'_>, args: GrepArgs) -> Result<ToolOutput, ToolError> {
        let max = args.max_matches.unwrap_or(GREP_DEFAULT).clamp(1, GREP_MAX);
        let found = ctx
            .env
            .workspace
            .grep(GrepRequest {
                pattern: args.pattern.clone(),
                path: args.path.unwrap_or_else(|| ".".to_owned()),
                include: args.include,
                case_insensitive: args.case_insensitive,
                max_matches: max,
            })
            .await?;
        if found.matches.is_empty() {
            return Ok(ToolOutput::text(format!("no matches for {}", args.pattern)));
        }
        let mut out = String::new();
        for m in &found.matches {
            out.push_str(&format!("{}:{}: {}\n", m.path, m.line_number, m.line));
        }
        if found.truncated {
            out.push_str(&format!("[stopped after {max} matches; narrow the search]"));
        }
        Ok(ToolOutput::text(truncate_chars(out, MAX_RESULT_CHARS)))
    }
}
