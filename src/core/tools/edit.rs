//! `write`, `edit` and `multi_edit`. Edits are exact string replacements that must match
//! once (unless `replace_all`); `multi_edit` applies all edits in memory and writes once,
//! so it either applies every edit or changes nothing.
//!
//! Every file these tools read whole or write is at most `MAX_FILE_BYTES`
//! ([`FileLimits`]): a larger file is refused before it is read, and an edit whose result
//! would pass the cap (a `replace_all` multiplying a short argument) before it is built.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ToolContext, ToolError, ToolOutput, TypedTool};
use crate::core::limits::FileLimits;
use ports::WorkspaceError;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// File to create or replace.
    path: String,
    /// The complete new contents.
    content: String,
}

pub struct WriteTool;

#[async_trait]
impl TypedTool for WriteTool {
    type Args = WriteArgs;
    const NAME: &'static str = "write";
    const DESCRIPTION: &'static str = "Create a file or replace its whole contents. \
        Missing parent directories are created. To change part of a file, prefer `edit`.";
    const MUTATES_FILES: bool = true;

    async fn run(&self, ctx: &ToolContext<'_>, args: WriteArgs) -> Result<ToolOutput, ToolError> {
        let len = args.content.len();
        check_size(len, ctx.env.files, &args.path)?;
        ctx.env
            .workspace
            .write(&args.path, args.content.into_bytes())
            .await?;
        Ok(ToolOutput::text(format!(
            "Wrote {len} bytes to {}",
            args.path
        )))
    }
}

/// One replacement.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditOp {
    /// The exact text to replace, including whitespace; it must occur exactly once
    /// unless `replace_all` is true.
    old_string: String,
    /// The replacement text.
    new_string: String,
    /// Replace every occurrence instead of requiring a unique match.
    #[serde(default)]
    replace_all: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditArgs {
    /// File to edit.
    path: String,
    /// The exact text to replace, including whitespace; it must occur exactly once
    /// unless `replace_all` is true.
    old_string: String,
    /// The replacement text.
    new_string: String,
    /// Replace every occurrence instead of requiring a unique match.
    #[serde(default)]
    replace_all: bool,
}

pub struct EditTool;

#[async_trait]
impl TypedTool for EditTool {
    type Args = EditArgs;
    const NAME: &'static str = "edit";
    const DESCRIPTION: &'static str = "Replace an exact string in a file. `old_string` \
        must match the file exactly (whitespace included) and occur exactly once; include \
        surrounding lines to make it unique, or set `replace_all` to change every \
        occurrence. Read the file with `view` first.";
    const MUTATES_FILES: bool = true;

    async fn run(&self, ctx: &ToolContext<'_>, args: EditArgs) -> Result<ToolOutput, ToolError> {
        let text = read_text(ctx, &args.path).await?;
        let op = EditOp {
            old_string: args.old_string,
            new_string: args.new_string,
            replace_all: args.replace_all,
        };
        let (new_text, count) = apply(&text, &op, ctx.env.files)?;
        ctx.env
            .workspace
            .write(&args.path, new_text.into_bytes())
            .await?;
        Ok(ToolOutput::text(format!(
            "Edited {}: {count} replacement{}",
            args.path,
            if count == 1 { "" } else { "s" }
        )))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MultiEditArgs {
    /// File to edit.
    path: String,
    /// Edits applied in order, each to the result of the previous one.
    edits: Vec<EditOp>,
}

pub struct MultiEditTool;

#[async_trait]
impl TypedTool for MultiEditTool {
    type Args = MultiEditArgs;
    const NAME: &'static str = "multi_edit";
    const DESCRIPTION: &'static str = "Apply several exact string replacements to one \
        file, in order, each seeing the result of the previous. The rules of `edit` apply \
        to every edit. All-or-nothing: if any edit fails, the file is left unchanged.";
    const MUTATES_FILES: bool = true;

    async fn run(
        &self,
        ctx: &ToolContext<'_>,
        args: MultiEditArgs,
    ) -> Result<ToolOutput, ToolError> {
        if args.edits.is_empty() {
            return Err(ToolError("edits is empty: give at least one edit".into()));
        }
        let mut text = read_text(ctx, &args.path).await?;
        let mut total = 0;
        for (i, op) in args.edits.iter().enumerate() {
            let (next, count) = apply(&text, op, ctx.env.files).map_err(|e| {
                ToolError(format!(
                    "edit {} of {} failed, file left unchanged: {}",
                    i + 1,
                    args.edits.len(),
                    e.0
                ))
            })?;
            text = next;
            total += count;
        }
        ctx.env
            .workspace
            .write(&args.path, text.into_bytes())
            .await?;
        Ok(ToolOutput::text(format!(
            "Edited {}: {} edits, {total} replacements",
            args.path,
            args.edits.len()
        )))
    }
}

/// The file as text, when it is within the cap.
async fn read_text(ctx: &ToolContext<'_>, path: &str) -> Result<String, ToolError> {
    let max = ctx.env.files.max_file_bytes;
    let bytes = match ctx.env.workspace.read_capped(path, max).await {
        Err(WorkspaceError::TooLarge { .. }) => {
            return Err(ToolError(format!(
                "{path} is larger than {max} bytes, the most this tool edits; change it \
                 with the shell instead (sed, patch)"
            )));
        }
        other => other?,
    };
    String::from_utf8(bytes).map_err(|_| ToolError(format!("{path} is not UTF-8 text")))
}

/// Refuses contents over the cap.
fn check_size(len: usize, limits: FileLimits, path: &str) -> Result<(), ToolError> {
    if len as u64 > limits.max_file_bytes {
        return Err(ToolError(format!(
            "the new contents of {path} would be {len} bytes; files over {} bytes are not \
             written",
            limits.max_file_bytes
        )));
    }
    Ok(())
}

/// Applies one replacement, enforcing the uniqueness rule and the size cap (checked
/// before the new text is built). Returns the text and the count.
fn apply(text: &str, op: &EditOp, limits: FileLimits) -> Result<(String, usize), ToolError> {
    if op.old_string.is_empty() {
        return Err(ToolError(
            "old_string is empty; use `write` to create a file".into(),
        ));
    }
    if op.old_string == op.new_string {
        return Err(ToolError("old_string and new_string are identical".into()));
    }
    let count = text.matches(op.old_string.as_str()).count();
    match count {
        0 => Err(ToolError(
            "old_string not found in the file; it must match exactly, whitespace included".into(),
        )),
        1 => {
            check_result(text, op, 1, limits)?;
            Ok((text.replacen(&op.old_string, &op.new_string, 1), 1))
        }
        n if op.replace_all => {
            check_result(text, op, n, limits)?;
            Ok((text.replace(&op.old_string, &op.new_string), n))
        }
        n => Err(ToolError(format!(
            "old_string occurs {n} times; add surrounding context to make it unique, \
             or set replace_all"
        ))),
    }
}

/// Refuses a replacement whose result would pass the cap, from its size alone.
fn check_result(
    text: &str,
    op: &EditOp,
    count: usize,
    limits: FileLimits,
) -> Result<(), ToolError> {
    let grown = (op.new_string.len() as u128).saturating_mul(count as u128);
    let removed = (op.old_string.len() as u128) * (count as u128);
    let len = (text.len() as u128 + grown).saturating_sub(removed);
    if len > u128::from(limits.max_file_bytes) {
        return Err(ToolError(format!(
            "the result would be {len} bytes; files over {} bytes are not written, so \
             nothing was changed",
            limits.max_file_bytes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: FileLimits = FileLimits {
        max_file_bytes: 1 << 20,
    };

    fn apply(text: &str, op: &EditOp) -> Result<(String, usize), ToolError> {
        super::apply(text, op, ROOMY)
    }

    fn op(old: &str, new: &str, all: bool) -> EditOp {
        EditOp {
            old_string: old.into(),
            new_string: new.into(),
            replace_all: all,
        }
    }

    #[test]
    fn unique_match_is_replaced() {
        assert_eq!(
            apply("a b c", &op("b", "B", false)).unwrap(),
            ("a B c".into(), 1)
        );
    }

    #[test]
    fn ambiguous_missing_empty_and_identical_are_refused() {
        let e = apply("x x", &op("x", "y", false)).unwrap_err();
        assert!(e.0.contains("occurs 2 times"), "{e}");
        assert!(
            apply("abc", &op("z", "y", false))
                .unwrap_err()
                .0
                .contains("not found")
        );
        assert!(
            apply("abc", &op("", "y", false))
                .unwrap_err()
                .0
                .contains("empty")
        );
        assert!(
            apply("abc", &op("a", "a", false))
                .unwrap_err()
                .0
                .contains("identical")
        );
    }

    #[test]
    fn replace_all_changes_every_occurrence() {
        assert_eq!(
            apply("x x x", &op("x", "y", true)).unwrap(),
            ("y y y".into(), 3)
        );
    }

    #[test]
    fn a_result_over_the_cap_is_refused_before_it_is_built() {
        let limits = FileLimits {
            max_file_bytes: 100,
        };
        let text = "x".repeat(50);
        let e = super::apply(&text, &op("x", "yyyy", true), limits).unwrap_err();
        assert!(e.0.contains("would be 200 bytes"), "{e}");
        // Exactly at the cap is fine; shrinking always is.
        assert_eq!(
            super::apply(&text, &op("x", "yy", true), limits)
                .unwrap()
                .0
                .len(),
            100
        );
        assert!(super::apply(&"x".repeat(100), &op("xx", "", true), limits).is_ok());
        let e = super::apply("a", &op("a", &"b".repeat(101), false), limits).unwrap_err();
        assert!(e.0.contains("101 bytes"), "{e}");
    }
}
