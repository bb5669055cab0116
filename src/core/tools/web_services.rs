//! The web toolset's `search` and `scrape`, offered only when the admin configured their
//! service (the toolbox checks): the model chooses the query or the page, the service and
//! its key are the admin's. The scraped page is fetched by the service, from its own
//! network: a self-hosted scraper on the LAN reaches what that network reaches.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ToolContext, ToolError, ToolOutput, TypedTool};

/// Results `search` returns unless the model asks for another number.
const DEFAULT_RESULTS: usize = 5;
/// The most results one search returns.
const MAX_RESULTS: usize = 10;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// What to search the web for.
    query: String,
    /// How many results (1 to 10, default 5).
    #[serde(default)]
    max_results: Option<usize>,
}

/// `search`: a web search through the configured service.
pub struct SearchTool;

#[async_trait]
impl TypedTool for SearchTool {
    type Args = SearchArgs;
    const NAME: &'static str = "search";
    const DESCRIPTION: &'static str = "Search the web. Returns the best results, each with \
        its title, URL and an excerpt; read a result in full with `fetch`.";

    async fn run(&self, ctx: &ToolContext<'_>, args: SearchArgs) -> Result<ToolOutput, ToolError> {
        let service = ctx
            .env
            .search
            .as_ref()
            .ok_or_else(|| ToolError("no search service is configured".into()))?;
        if args.query.trim().is_empty() {
            return Err(ToolError("the query is empty".into()));
        }
        let wanted = args
            .max_results
            .unwrap_or(DEFAULT_RESULTS)
            .clamp(1, MAX_RESULTS);
        let hits = service
            .search(&args.query, wanted)
            .await
            .map_err(|e| ToolError(format!("the search failed: {e}")))?;
        if hits.is_empty() {
            return Ok(ToolOutput::text(format!(
                "No results for {:?}.",
                args.query
            )));
        }
        let listed: Vec<String> = hits
            .iter()
            .enumerate()
            .map(|(i, hit)| {
                format!(
                    "{}. {}\n{}\n{}",
                    i + 1,
                    hit.title,
                    hit.url,
                    hit.snippet.trim()
                )
            })
            .collect();
        Ok(ToolOutput::text(listed.join("\n\n")))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeArgs {
    /// The page to render, as an http(s) URL.
    url: String,
}

/// `scrape`: a page rendered by the configured service (scripts run), as markdown.
pub struct ScrapeTool;

#[async_trait]
impl TypedTool for ScrapeTool {
    type Args = ScrapeArgs;
    const NAME: &'static str = "scrape";
    const DESCRIPTION: &'static str = "Render a web page with a browser service (for pages \
        that need JavaScript, where `fetch` sees little) and return it as markdown.";

    async fn run(&self, ctx: &ToolContext<'_>, args: ScrapeArgs) -> Result<ToolOutput, ToolError> {
        let service = ctx
            .env
            .scraper
            .as_ref()
            .ok_or_else(|| ToolError("no scraping service is configured".into()))?;
        if !(args.url.starts_with("http://") || args.url.starts_with("https://")) {
            return Err(ToolError(format!("{} is not an http(s) URL", args.url)));
        }
        let page = service
            .scrape(&args.url)
            .await
            .map_err(|e| ToolError(format!("{} could not be scraped: {e}", args.url)))?;
        let title = page
            .title
            .map(|t| format!("Title: {t}\n"))
            .unwrap_or_default();
        Ok(ToolOutput::text(format!(
            "URL: {}\n{title}\n{}",
            page.url, page.markdown
        )))
    }
}
