//! The web toolset's services over HTTP: Tavily or Google Programmable Search for
//! `search`, Firecrawl for `scrape`. Each speaks to a base URL the admin sets (the public
//! API by default, or a self-hosted or test server), with the key from the service's own
//! environment; a failure names the service and its status, never the key.

mod firecrawl;
mod google;
mod tavily;

use std::time::Duration;

pub use firecrawl::Firecrawl;
pub use google::GoogleSearch;
pub use tavily::Tavily;

use ports::WebServiceError;
use serde::de::DeserializeOwned;

/// One request may take this long, connection included.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The client every service uses: no redirects (an API does not redirect; following one
/// would send the key elsewhere), one time limit.
fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("agent-runtime/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
}

/// The JSON answer of a request to `service`, or an error naming the service and status.
async fn answer<T: DeserializeOwned>(
    service: &str,
    request: reqwest::RequestBuilder,
) -> Result<T, WebServiceError> {
    let response = request.send().await.map_err(|e| {
        tracing::info!(%service, error = %e, "web service unreachable");
        WebServiceError(format!("{service} could not be reached"))
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(WebServiceError(format!("{service} answered {status}")));
    }
    response.json::<T>().await.map_err(|e| {
        WebServiceError(format!(
            "{service} sent an answer that could not be read: {e}"
        ))
    })
}

/// A JSON API reached with a bearer key at a base URL.
struct KeyedApi {
    client: reqwest::Client,
    /// Without a trailing slash, so paths join cleanly.
    base: String,
    key: String,
}

impl KeyedApi {
    fn new(key: String, base: Option<&str>, default_base: &str) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: client()?,
            base: trimmed(base.unwrap_or(default_base)),
            key,
        })
    }

    /// A POST of `body` to `path` with the key.
    fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(body)
    }
}

/// `base` without a trailing slash, so paths join cleanly.
fn trimmed(base: &str) -> String {
    base.trim_end_matches('/').to_owned()
}
