//! What both HTTP providers share: where to send, the key, the idle timeout, and opening a
//! streamed request. Each provider adds only its path, auth header and decoder.

use std::time::Duration;

use ports::{ModelError, ModelStream};

use super::sse::{self, Decoder};
use super::{DEFAULT_IDLE_TIMEOUT, HttpClient};

/// One provider endpoint on the shared pool.
#[derive(Clone)]
pub(crate) struct Connection {
    http: HttpClient,
    base_url: String,
    pub(crate) api_key: Option<String>,
    idle_timeout: Duration,
}

impl std::fmt::Debug for Connection {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(http: HttpClient, base_url: String, api_key: Option<String>) -> Self {
        Self {
            http,
            base_url,
            api_key,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    pub(crate) fn set_idle_timeout(&mut self, idle: Duration) {
        self.idle_timeout = idle;
    }

    /// A streaming POST of `body` to `<base_url>/<path>`.
    pub(crate) fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        let url = format!("{}/{path}", self.base_url.trim_end_matches('/'));
        self.http
            .0
            .post(url)
            .header("accept", "text/event-stream")
            .json(body)
    }

    /// Sends the request and turns its event stream into deltas with `decoder`.
    pub(crate) async fn open<D: Decoder>(
        &self,
        request: reqwest::RequestBuilder,
        decoder: D,
    ) -> Result<ModelStream, ModelError> {
        let response = sse::send(request, self.idle_timeout).await?;
        Ok(sse::deltas(response, decoder, self.idle_timeout))
    }
}
