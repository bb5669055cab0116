//! `view`: a file with line numbers, a window of lines at a time; pictures as images.

use async_trait::async_trait;
use base64::Engine;
use ports::ImageData;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{MAX_RESULT_CHARS, ToolContext, ToolError, ToolOutput, TypedTool};

const DEFAULT_LIMIT: usize = 2000;
const MAX_LINE_CHARS: usize = 2000;
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

pub struct View;

#[async_trait]
impl TypedTool for View {
    type Args = ViewArgs;
    const NAME: &'static str = "view";
    const DESCRIPTION: &'static str = "Read a file. Text comes back with line numbers \
        (`     N\\tline`), at most 2000 lines per call: use `offset` and `limit` to page \
        through long files. PNG, JPEG, GIF and WebP files come back as images.";

    async fn run(&self, ctx: &ToolContext<'_>, args: ViewArgs) -> Result<ToolOutput, ToolError> {
        let bytes = ctx.env.workspace.read(&args.path).await?;
        if let Some(mime_type) = image_type(&args.path) {
            return image(&args.path, mime_type, &bytes);
        }
        if bytes.contains(&0) {
            return Err(ToolError(format!(
                "{} is a binary file ({} bytes); it cannot be shown as text",
                args.path,
                bytes.len()
            )));
        }
        let text = String::from_utf8_lossy(&bytes);
        Ok(ToolOutput::text(numbered(
            &text,
            args.offset.unwrap_or(1),
            args.limit.unwrap_or(DEFAULT_LIMIT),
        )))
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

fn image(path: &str, mime_type: &str, bytes: &[u8]) -> Result<ToolOutput, ToolError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ToolError(format!(
            "{path} is {} bytes; images over {MAX_IMAGE_BYTES} bytes are not sent",
            bytes.len()
        )));
    }
    Ok(ToolOutput {
        content: format!("Image {path} ({mime_type}, {} bytes)", bytes.len()),
        images: vec![ImageData {
            mime_type: mime_type.to_owned(),
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        }],
    })
}

/// Lines `offset..offset+limit` with right-aligned numbers, long lines cut, and a note
/// when lines remain.
fn numbered(text: &str, offset: usize, limit: usize) -> String {
    let offset = offset.max(1);
    let total = text.lines().count();
    if total == 0 {
        return "(empty file)".to_owned();
    }
    if offset > total {
        return format!("(the file has {total} lines; offset {offset} is past the end)");
    }
    let mut out = String::new();
    let mut shown_to = offset - 1;
    for (i, line) in text.lines().enumerate().skip(offset - 1).take(limit.max(1)) {
        let line = match line.char_indices().nth(MAX_LINE_CHARS) {
            Some((cut, _)) => format!("{}… [line cut]", &line[..cut]),
            None => line.to_owned(),
        };
        out.push_str(&format!("{:>6}\t{line}\n", i + 1));
        shown_to = i + 1;
        if out.len() > MAX_RESULT_CHARS {
            break;
        }
    }
    if shown_to < total {
        out.push_str(&format!(
            "[showing lines {offset}-{shown_to} of {total}; use offset={} to read on]",
            shown_to + 1
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn windows_are_numbered_and_say_what_remains() {
        let text = "a\nb\nc\nd\n";
        assert_eq!(
            numbered(text, 1, 10),
            "     1\ta\n     2\tb\n     3\tc\n     4\td\n"
        );
        assert_eq!(
            numbered(text, 2, 2),
            "     2\tb\n     3\tc\n[showing lines 2-3 of 4; use offset=4 to read on]"
        );
        assert!(numbered(text, 9, 2).contains("past the end"));
        assert_eq!(numbered("", 1, 5), "(empty file)");
    }
}
