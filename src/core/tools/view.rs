//! `view`: a file with line numbers, a window of lines at a time; pictures as images.

use async_trait::async_trait;
use base64::Engine;
use ports::{ImageData, LineSlice, LineWindow, WorkspaceError};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{MAX_RESULT_CHARS, ToolContext, ToolError, ToolOutput, TypedTool};

const DEFAULT_LIMIT: usize = 2000;
const MAX_LINE_CHARS: usize = 2000;
/// Bytes kept of one line: enough for [`MAX_LINE_CHARS`] characters of any width.
const MAX_LINE_BYTES: usize = 4 * MAX_LINE_CHARS + 4;
/// Bytes of text one call reads at most, whatever `limit` says: the result is cut at
/// [`MAX_RESULT_CHARS`] characters anyway.
const MAX_READ_BYTES: usize = 4 * MAX_RESULT_CHARS;
/// Larger pictures are refused rather than sent to the model.
const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewArgs {
    /// File to read, relative to the working directory or absolute.
    path: String,
    /// First line to show, 1-based (default 1).
    #[serde(default)]
    offset: Option<usize>,
    /// How many lines to show (default 2000).
    #[serde(default)]
    limit: Option<usize>,
}

pub struct ViewTool;

#[async_trait]
impl TypedTool for ViewTool {
    type Args = ViewArgs;
    const NAME: &'static str = "view";
    const DESCRIPTION: &'static str = "Read a file. Text comes back with line numbers \
        (`     N\\tline`), at most 2000 lines per call: use `offset` and `limit` to page \
        through long files. PNG, JPEG, GIF and WebP files come back as images.";

    async fn run(&self, ctx: &ToolContext<'_>, args: ViewArgs) -> Result<ToolOutput, ToolError> {
        if let Some(mime_type) = image_type(&args.path) {
            return image(ctx, &args.path, mime_type).await;
        }
        let offset = args.offset.unwrap_or(1).max(1);
        let window = LineWindow {
            offset: offset as u64,
            limit: args.limit.unwrap_or(DEFAULT_LIMIT).max(1),
            max_bytes: MAX_READ_BYTES,
            max_line_bytes: MAX_LINE_BYTES,
            max_scan_bytes: ctx.env.files.max_file_bytes,
        };
        let slice = ctx.env.workspace.read_lines(&args.path, window).await?;
        if slice.binary {
            return Err(ToolError(format!(
                "{} is a binary file; it cannot be shown as text",
                args.path
            )));
        }
        let mut text = numbered(&slice, offset);
        if slice.scan_capped {
            text.push_str(&format!(
                "\n[view reads at most the first {} bytes of a file per call; for lines past \
                 them use the shell, e.g. sed -n '{offset},+{}p' {}]",
                ctx.env.files.max_file_bytes,
                window.limit.saturating_sub(1),
                args.path
            ));
        }
        Ok(ToolOutput::text(text))
    }
}

fn image_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

async fn image(
    ctx: &ToolContext<'_>,
    path: &str,
    mime_type: &str,
) -> Result<ToolOutput, ToolError> {
    let bytes = match ctx
        .env
        .workspace
        .read_capped(path, MAX_IMAGE_BYTES as u64)
        .await
    {
        Err(WorkspaceError::TooLarge { .. }) => {
            return Err(ToolError(format!(
                "{path} is larger than {MAX_IMAGE_BYTES} bytes; images that large are not sent"
            )));
        }
        other => other?,
    };
    Ok(ToolOutput {
        content: format!("Image {path} ({mime_type}, {} bytes)", bytes.len()),
        images: vec![ImageData {
            mime_type: mime_type.to_owned(),
            data: base64::engine::general_purpose::STANDARD.encode(&bytes),
        }],
    })
}

/// The window's lines with right-aligned numbers, long lines cut, and a note when lines
/// remain.
fn numbered(slice: &LineSlice, offset: usize) -> String {
    if slice.lines.is_empty() {
        return match slice.total {
            Some(0) => "(empty file)".to_owned(),
            Some(total) => format!("(the file has {total} lines; offset {offset} is past the end)"),
            None => format!("(nothing shown from line {offset})"),
        };
    }
    let mut out = String::new();
    let mut shown_to = offset - 1;
    for (i, line) in slice.lines.iter().enumerate() {
        let text = match line.text.char_indices().nth(MAX_LINE_CHARS) {
            Some((cut, _)) => format!("{}… [line cut]", &line.text[..cut]),
            None if line.cut => format!("{}… [line cut]", line.text),
            None => line.text.clone(),
        };
        out.push_str(&format!("{:>6}\t{text}\n", offset + i));
        shown_to = offset + i;
        if out.len() > MAX_RESULT_CHARS {
            break;
        }
    }
    let remains = slice.more || shown_to < offset - 1 + slice.lines.len();
    match slice.total {
        _ if !remains => {}
        Some(total) => out.push_str(&format!(
            "[showing lines {offset}-{shown_to} of {total}; use offset={} to read on]",
            shown_to + 1
        )),
        None => out.push_str(&format!(
            "[showing lines {offset}-{shown_to}; more follow: use offset={} to read on]",
            shown_to + 1
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ports::mocks::{MockShell, MockWorkspace};
    use ports::{LineSlice, TextLine};

    use super::*;
    use crate::core::environment::{Environment, ShellLimits};
    use crate::core::run::RunControl;

    fn slice(lines: &[&str], more: bool, total: Option<u64>) -> LineSlice {
        LineSlice {
            lines: lines
                .iter()
                .map(|l| TextLine {
                    text: (*l).to_owned(),
                    cut: false,
                })
                .collect(),
            more,
            total,
            binary: false,
            scan_capped: false,
        }
    }

    #[test]
    fn windows_are_numbered_and_say_what_remains() {
        assert_eq!(
            numbered(&slice(&["a", "b", "c", "d"], false, Some(4)), 1),
            "     1\ta\n     2\tb\n     3\tc\n     4\td\n"
        );
        assert_eq!(
            numbered(&slice(&["b", "c"], true, None), 2),
            "     2\tb\n     3\tc\n[showing lines 2-3; more follow: use offset=4 to read on]"
        );
        assert!(numbered(&slice(&[], false, Some(4)), 9).contains("past the end"));
        assert_eq!(numbered(&slice(&[], false, Some(0)), 1), "(empty file)");
    }

    fn ctx_with(workspace: MockWorkspace) -> (Arc<Environment>, RunControl) {
        let env = Arc::new(Environment {
            workspace: Arc::new(workspace),
            downloader: Arc::new(ports::mocks::MockDownloader::new()),
            search: None,
            scraper: None,
            shell: Arc::new(MockShell::new()),
            command_vars: vec![],
            limits: ShellLimits::default(),
            files: Default::default(),
            redactor: Default::default(),
        });
        (env, RunControl::new())
    }

    async fn view(workspace: MockWorkspace, args: &str) -> Result<ToolOutput, ToolError> {
        let (env, control) = ctx_with(workspace);
        let sink = crate::core::run::CollectingSink::default();
        let ctx = ToolContext {
            env,
            scratch: Arc::default(),
            control: &control,
            sink: &sink,
        };
        crate::core::tools::Tool::call(&ViewTool, &ctx, args).await
    }

    #[tokio::test]
    async fn text_is_read_as_a_bounded_window_never_whole() {
        let mut ws = MockWorkspace::new();
        ws.expect_read_lines()
            .withf(|path, w| {
                path == "big.log"
                    && *w
                        == LineWindow {
                            offset: 500,
                            limit: 3,
                            max_bytes: MAX_READ_BYTES,
                            max_line_bytes: MAX_LINE_BYTES,
                            max_scan_bytes: 10 << 20,
                        }
            })
            .returning(|_, _| Ok(slice(&["x", "y", "z"], true, None)));
        ws.expect_read_capped().never();
        let out = view(ws, r#"{"path":"big.log","offset":500,"limit":3}"#)
            .await
            .unwrap();
        assert!(out.content.starts_with("   500\tx\n"), "{}", out.content);
        assert!(
            out.content.ends_with("use offset=503 to read on]"),
            "{}",
            out.content
        );
    }

    #[tokio::test]
    async fn binary_files_and_oversize_images_are_tool_errors() {
        let mut ws = MockWorkspace::new();
        ws.expect_read_lines().returning(|_, _| {
            let mut s = slice(&["\0"], false, Some(1));
            s.binary = true;
            Ok(s)
        });
        let e = view(ws, r#"{"path":"a.bin"}"#).await.unwrap_err();
        assert!(e.0.contains("binary"), "{e}");

        let mut ws = MockWorkspace::new();
        ws.expect_read_capped()
            .withf(|path, max| path == "huge.png" && *max == MAX_IMAGE_BYTES as u64)
            .returning(|path, max| {
                Err(WorkspaceError::TooLarge {
                    path: path.to_owned(),
                    max,
                })
            });
        let e = view(ws, r#"{"path":"huge.png"}"#).await.unwrap_err();
        assert!(e.0.contains("not sent"), "{e}");
    }
}
