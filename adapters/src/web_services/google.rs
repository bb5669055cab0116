//! Google Programmable Search (`GET {base}/customsearch/v1?key&cx&q&num`).

use async_trait::async_trait;
use ports::{SearchHit, WebSearch, WebServiceError};
use serde::Deserialize;

/// The public API.
pub const DEFAULT_BASE_URL: &str = "https://www.googleapis.com";

/// The most results one request may ask for.
const MAX_NUM: usize = 10;

pub struct GoogleSearch {
    client: reqwest::Client,
    base: String,
    key: String,
    /// The search engine id.
    cx: String,
}

impl GoogleSearch {
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(key: String, cx: String, base: Option<&str>) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: super::client()?,
            base: super::trimmed(base.unwrap_or(DEFAULT_BASE_URL)),
            key,
            cx,
        })
    }
}

#[derive(Deserialize)]
struct Answer {
    /// Absent when nothing was found.
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    title: String,
    link: String,
    #[serde(default)]
    snippet: String,
}

#[async_trait]
impl WebSearch for GoogleSearch {
    async fn search(
        &self,
        query: &str,
        max_results: usize,
    ) -> Result<Vec<SearchHit>, WebServiceError> {
        let num = max_results.clamp(1, MAX_NUM).to_string();
        let url = reqwest::Url::parse_with_params(
            &format!("{}/customsearch/v1", self.base),
            &[
                ("key", self.key.as_str()),
                ("cx", self.cx.as_str()),
                ("q", query),
                ("num", num.as_str()),
            ],
        )
        .map_err(|_| WebServiceError("Google search: its base URL is not a URL".into()))?;
        let request = self.client.get(url);
        let answer: Answer = super::answer("Google search", request).await?;
        Ok(answer
            .items
            .into_iter()
            .take(max_results)
            .map(|i| SearchHit {
                title: i.title,
                url: i.link,
                snippet: i.snippet,
            })
            .collect())
    }
}
