//! Search and scrape services the web toolset uses when the admin configured one (Tavily or
//! Google Programmable Search; Firecrawl). Their endpoints are the admin's choice, not the
//! model's, so they are not subject to the outbound policy; the model chooses only the
//! query or the page.

use async_trait::async_trait;

/// One result of a web search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub title: String,
    pub url: String,
    /// The service's excerpt of the page.
    pub snippet: String,
}

/// A page as a scraping service rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapedPage {
    /// The page's URL as the service reports it (after redirects).
    pub url: String,
    pub title: Option<String>,
    pub markdown: String,
}

/// Why a search or scrape failed; the text is for the model and never holds a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WebServiceError(pub String);

/// A web search service.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait WebSearch: Send + Sync {
    /// At most `max_results` hits for `query`, best first.
    async fn search(
        &self,
        query: &str,
        max_results: usize,
    ) -> Result<Vec<SearchHit>, WebServiceError>;
}

/// A service that renders a page (scripts run) and returns it as markdown.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Scraper: Send + Sync {
    async fn scrape(&self, url: &str) -> Result<ScrapedPage, WebServiceError>;
}
