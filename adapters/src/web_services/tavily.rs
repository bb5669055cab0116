//! Tavily search (`POST {base}/search`, bearer key).

use async_trait::async_trait;
use ports::{SearchHit, WebSearch, WebServiceError};
use serde::Deserialize;
use serde_json::json;

/// The public API.
pub const DEFAULT_BASE_URL: &str = "https://api.tavily.com";

pub struct Tavily(super::KeyedApi);

impl Tavily {
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(key: String, base: Option<&str>) -> Result<Self, reqwest::Error> {
        super::KeyedApi::new(key, base, DEFAULT_BASE_URL).map(Self)
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default)]
    title: String,
    url: String,
    #[serde(default)]
    content: String,
}

#[async_trait]
impl WebSearch for Tavily {
    async fn search(
        &self,
        query: &str,
        max_results: usize,
    ) -> Result<Vec<SearchHit>, WebServiceError> {
        let request = self.0.post(
            "/search",
            &json!({"query": query, "max_results": max_results}),
        );
        let answer: Answer = super::answer("Tavily", request).await?;
        Ok(answer
            .results
            .into_iter()
            .take(max_results)
            .map(|h| SearchHit {
                title: h.title,
                url: h.url,
                snippet: h.content,
            })
            .collect())
    }
}
