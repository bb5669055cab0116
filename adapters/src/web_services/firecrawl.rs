//! Firecrawl scraping (`POST {base}/v1/scrape`, bearer key, markdown format).

use async_trait::async_trait;
use ports::{ScrapedPage, Scraper, WebServiceError};
use serde::Deserialize;
use serde_json::json;

/// The public API.
pub const DEFAULT_BASE_URL: &str = "https://api.firecrawl.dev";

pub struct Firecrawl(super::KeyedApi);

impl Firecrawl {
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(key: String, base: Option<&str>) -> Result<Self, reqwest::Error> {
        super::KeyedApi::new(key, base, DEFAULT_BASE_URL).map(Self)
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    error: Option<String>,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    markdown: String,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default, rename = "sourceURL")]
    source_url: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

#[async_trait]
impl Scraper for Firecrawl {
    async fn scrape(&self, url: &str) -> Result<ScrapedPage, WebServiceError> {
        let request = self
            .0
            .post("/v1/scrape", &json!({"url": url, "formats": ["markdown"]}));
        let answer: Answer = super::answer("Firecrawl", request).await?;
        match answer.data {
            Some(data) if answer.success => Ok(ScrapedPage {
                url: data.metadata.source_url.unwrap_or_else(|| url.to_owned()),
                title: data.metadata.title,
                markdown: data.markdown,
            }),
            _ => Err(WebServiceError(format!(
                "Firecrawl could not scrape the page: {}",
                answer.error.as_deref().unwrap_or("no reason given")
            ))),
        }
    }
}
