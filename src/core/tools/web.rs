//! The web toolset's `fetch` and `download`. Every URL is the model's choice, so both go
//! through the [`ports::Downloader`] port, whose adapter applies the outbound policy (no private
//! or loopback address unless allowed, redirects re-checked, one time limit) and caps the
//! body while it is read. What a refusal or failure says is deliberately coarse: the
//! model must not map the network behind the service through these tools.

use async_trait::async_trait;
use htmd::Element;
use htmd::element_handler::Handlers;
use ports::{DownloadError, Downloaded};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{MAX_RESULT_CHARS, ToolContext, ToolError, ToolOutput, TypedTool, truncate_chars};

/// The largest body `fetch` reads: a page is for reading, bigger things are downloads.
pub const MAX_FETCH_BYTES: u64 = 5 * 1024 * 1024;

/// Characters of content `fetch` returns unless the model asks for fewer.
const DEFAULT_FETCH_CHARS: usize = 20_000;

/// Elements that carry no reading matter: code, styling, navigation and embeds.
const SKIPPED_ELEMENTS: &[&str] = &[
    "script", "style", "noscript", "nav", "header", "footer", "aside", "iframe", "svg", "form",
    "button", "template", "canvas",
];

/// How `fetch` returns an HTML page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PageFormat {
    /// Readable markdown: headings, lists, links and emphasis kept.
    #[default]
    Markdown,
    /// The markdown's words without link targets or images: the fewest tokens.
    Text,
    /// The HTML as the server sent it.
    Html,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchArgs {
    /// The http(s) URL to read.
    url: String,
    /// How an HTML page is returned (default markdown). JSON and text come as they are.
    #[serde(default)]
    format: Option<PageFormat>,
    /// At most this many characters of content (default 20000).
    #[serde(default)]
    max_chars: Option<usize>,
}

/// `fetch`: reads a web page or a JSON/text resource for the model.
pub struct FetchTool;

#[async_trait]
impl TypedTool for FetchTool {
    type Args = FetchArgs;
    const NAME: &'static str = "fetch";
    const DESCRIPTION: &'static str = "Read a web page or a JSON/text resource over http(s). \
        HTML comes back as readable markdown (format `text` drops links and images, `html` \
        returns the page as sent); JSON and text as they are. PDFs, images and other binary \
        files are refused: save them with `download`. The result starts with the final URL \
        (after redirects) and the content type.";

    async fn run(&self, ctx: &ToolContext<'_>, args: FetchArgs) -> Result<ToolOutput, ToolError> {
        let page = ctx
            .env
            .downloader
            .download(&args.url, MAX_FETCH_BYTES)
            .await
            .map_err(|e| fetch_failure(&args.url, &e))?;
        let kind = page.mime_type.clone().unwrap_or_else(|| "unknown".into());
        let final_url = page.final_url.clone();
        let content = readable(page, args.format.unwrap_or_default()).await?;
        let max = args
            .max_chars
            .unwrap_or(DEFAULT_FETCH_CHARS)
            .clamp(1, MAX_RESULT_CHARS);
        Ok(ToolOutput::text(format!(
            "URL: {final_url}\nContent-Type: {kind}\n\n{}",
            truncate_chars(content, max)
        )))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DownloadArgs {
    /// The http(s) URL to save.
    url: String,
    /// Where to save it in the workspace (a file path; parents are created).
    path: String,
}

/// `download`: saves a resource into the workspace, under the path policy.
pub struct DownloadTool;

#[async_trait]
impl TypedTool for DownloadTool {
    type Args = DownloadArgs;
    const NAME: &'static str = "download";
    const DESCRIPTION: &'static str = "Save an http(s) resource (a PDF, an image, an archive, \
        any file) into the workspace at `path`; read it afterwards with the file tools.";
    const MUTATES_FILES: bool = true;

    async fn run(
        &self,
        ctx: &ToolContext<'_>,
        args: DownloadArgs,
    ) -> Result<ToolOutput, ToolError> {
        let cap = ctx.env.files.max_file_bytes;
        let got = ctx
            .env
            .downloader
            .download(&args.url, cap)
            .await
            .map_err(|e| download_failure(&args.url, &e))?;
        let size = got.bytes.len();
        let kind = got.mime_type.unwrap_or_else(|| "unknown type".into());
        ctx.env.workspace.write(&args.path, got.bytes).await?;
        Ok(ToolOutput::text(format!(
            "Saved {} to {} ({kind}, {size} bytes).",
            args.url, args.path
        )))
    }
}

/// The content of a fetched resource as the model reads it, or why it is refused.
async fn readable(page: Downloaded, format: PageFormat) -> Result<String, ToolError> {
    let kind = page.mime_type.as_deref().unwrap_or("");
    if is_html(kind) {
        let html = String::from_utf8_lossy(&page.bytes).into_owned();
        if format == PageFormat::Html {
            return Ok(html);
        }
        if nesting_bound(&html) > MAX_NESTING {
            return Err(ToolError(format!(
                "{} nests its elements more than {MAX_NESTING} deep, too deep to convert: \
                 fetch it with format html",
                page.final_url
            )));
        }
        return convert_off_runtime(html, format).await;
    }
    if is_text(kind) || (kind.is_empty() && std::str::from_utf8(&page.bytes).is_ok()) {
        return Ok(String::from_utf8_lossy(&page.bytes).into_owned());
    }
    Err(ToolError(format!(
        "{} is {kind}, not a page or text: save it with `download` and open it with the \
         file tools",
        page.final_url
    )))
}

/// Nesting the converter is given at most: it walks the tree recursively, so a page of a
/// few MB nested thousands deep would otherwise overflow its stack (aborting the service)
/// or take minutes. Real pages stay far below.
const MAX_NESTING: usize = 1_000;

/// The converter's own thread stack: room for [`MAX_NESTING`] levels with a wide margin.
const CONVERT_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Elements that never have content, so they open no level.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// An upper bound of the page's element nesting, from its tags alone (one linear pass):
/// start tags open a level unless void or self-closing, end tags close one. Tags the
/// parser closes implicitly (`<p>`, `<li>` …) only make the bound higher, never lower.
fn nesting_bound(html: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for tag in html.split('<').skip(1) {
        if let Some(rest) = tag.strip_prefix('/') {
            if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        if !tag.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue; // comments, doctypes, a stray `<`
        }
        let name_end = tag
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tag.len());
        let name = tag[..name_end].to_ascii_lowercase();
        let self_closing = tag.split('>').next().is_some_and(|t| t.ends_with('/'));
        if !self_closing && !VOID_ELEMENTS.contains(&name.as_str()) {
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

/// Converts on a thread of its own, with a stack sized for [`MAX_NESTING`], off the
/// async workers (a parse of a few MB takes a while).
async fn convert_off_runtime(html: String, format: PageFormat) -> Result<String, ToolError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("html-to-markdown".into())
        .stack_size(CONVERT_STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(html_to_markdown(&html, format));
        })
        .map_err(|_| ToolError("the page could not be converted".into()))?;
    rx.await
        .map_err(|_| ToolError("the page could not be converted".into()))?
}

/// Markdown of an HTML page without its scripts, styles and navigation; for
/// [`PageFormat::Text`] also without link targets and images.
fn html_to_markdown(html: &str, format: PageFormat) -> Result<String, ToolError> {
    let mut builder = htmd::HtmlToMarkdown::builder().skip_tags(SKIPPED_ELEMENTS.to_vec());
    if format == PageFormat::Text {
        builder = builder
            .add_handler(vec!["a"], |handlers: &dyn Handlers, element: Element| {
                Some(handlers.walk_children(element.node))
            })
            .add_handler(vec!["img"], |_: &dyn Handlers, _: Element| None);
    }
    let markdown = builder
        .build()
        .convert(html)
        .map_err(|_| ToolError("the page could not be converted".into()))?;
    Ok(markdown.trim().to_owned())
}

fn is_html(kind: &str) -> bool {
    kind == "text/html" || kind == "application/xhtml+xml"
}

fn is_text(kind: &str) -> bool {
    kind.starts_with("text/")
        || kind == "application/json"
        || kind.ends_with("+json")
        || kind == "application/xml"
        || kind.ends_with("+xml")
        || kind == "application/javascript"
        || kind == "application/x-ndjson"
}

fn fetch_failure(url: &str, e: &DownloadError) -> ToolError {
    match e {
        DownloadError::TooLarge(max) => ToolError(format!(
            "{url} is larger than {max} bytes: save it with `download` instead"
        )),
        other => ToolError(format!("{url} could not be fetched: {other}")),
    }
}

fn download_failure(url: &str, e: &DownloadError) -> ToolError {
    match e {
        DownloadError::TooLarge(max) => ToolError(format!(
            "{url} is larger than {max} bytes, the most a tool may write"
        )),
        other => ToolError(format!("{url} could not be downloaded: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><head><title>T</title><style>body{color:red}</style>
        <script>alert("x")</script></head><body><nav><a href="/">Home</a></nav>
        <h1>Guide</h1><p>Read <a href="https://example.org/more">more</a>.</p>
        <ul><li>one</li><li>two</li></ul><img src="cat.png" alt="cat"></body></html>"#;

    #[test]
    fn html_becomes_markdown_without_scripts_styles_or_navigation() {
        let md = html_to_markdown(PAGE, PageFormat::Markdown).unwrap();
        assert!(md.contains("# Guide"), "{md}");
        assert!(md.contains("[more](https://example.org/more)"), "{md}");
        assert!(md.contains("one") && md.contains("two"), "{md}");
        for gone in ["alert", "color:red", "Home"] {
            assert!(!md.contains(gone), "{gone} in {md}");
        }
    }

    #[test]
    fn text_drops_link_targets_and_images() {
        let text = html_to_markdown(PAGE, PageFormat::Text).unwrap();
        assert!(text.contains("Read more."), "{text}");
        assert!(
            !text.contains("https://example.org") && !text.contains("cat.png"),
            "{text}"
        );
    }

    #[test]
    fn the_nesting_bound_counts_open_elements_only() {
        assert_eq!(nesting_bound(PAGE), 4, "html > body > ul > li");
        assert_eq!(nesting_bound("<div><br><img src=x/><hr/></div><p>a"), 1);
        assert_eq!(nesting_bound("<!-- <div><div> --> a < b <x/>"), 2);
        assert_eq!(nesting_bound(&"<div>".repeat(5_000)), 5_000);
    }

    /// A page nested just inside the limit converts (on the converter's own stack); one
    /// nested far deeper is refused before any parse, instead of overflowing a stack.
    #[tokio::test]
    async fn deeply_nested_pages_convert_to_the_limit_and_are_refused_past_it() {
        let at_limit = "<div>".repeat(MAX_NESTING - 2) + "deep words";
        let md = readable(
            page(Some("text/html"), at_limit.as_bytes()),
            PageFormat::Markdown,
        )
        .await
        .unwrap();
        assert!(md.contains("deep words"), "{md}");
        let bomb = "<div>".repeat(500_000);
        let refused = readable(
            page(Some("text/html"), bomb.as_bytes()),
            PageFormat::Markdown,
        )
        .await
        .unwrap_err();
        assert!(
            refused.0.contains("too deep") && refused.0.contains("format html"),
            "{refused}"
        );
        let raw = readable(page(Some("text/html"), bomb.as_bytes()), PageFormat::Html).await;
        assert_eq!(raw.unwrap().len(), bomb.len());
    }

    fn page(kind: Option<&str>, body: &[u8]) -> Downloaded {
        Downloaded {
            bytes: body.to_vec(),
            mime_type: kind.map(str::to_owned),
            file_name: None,
            final_url: "https://example.org/x".into(),
        }
    }

    #[tokio::test]
    async fn json_and_text_pass_through_and_binaries_are_refused() {
        let json = readable(
            page(Some("application/json"), b"{\"a\":1}"),
            PageFormat::Markdown,
        );
        assert_eq!(json.await.unwrap(), "{\"a\":1}");
        let plain = readable(page(None, b"just words"), PageFormat::Markdown);
        assert_eq!(plain.await.unwrap(), "just words");
        let html = readable(page(Some("text/html"), b"<b>x</b>"), PageFormat::Html);
        assert_eq!(html.await.unwrap(), "<b>x</b>");
        for kind in ["application/pdf", "image/png", "application/octet-stream"] {
            let refused = readable(page(Some(kind), b"%PDF-1.7"), PageFormat::Markdown)
                .await
                .unwrap_err();
            assert!(refused.0.contains("`download`"), "{kind}: {refused}");
        }
        let binary = readable(page(None, &[0xff, 0xfe, 0x00]), PageFormat::Markdown);
        assert!(binary.await.is_err());
    }
}
