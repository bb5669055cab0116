//! `ports::Downloader` over reqwest: fetches what a caller attached as a `url` input part.
//!
//! The cap is checked twice: against Content-Length before the body is read, so an
//! announced giant fails at once, and again chunk by chunk, because chunked responses
//! announce nothing and a body is never buffered past the cap. One total timeout covers
//! connect, redirects and body, so a trickling server cannot hold a run's setup forever.

use std::time::Duration;

use async_trait::async_trait;
use ports::{DownloadError, Downloaded, Downloader};

use crate::boxed;

/// Total time a download may take when the caller does not choose.
pub const DEFAULT_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// A host that cannot even be reached in this time is down; the rest of the total timeout
/// is better spent on the body.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Enough for URL shorteners and http→https hops, short of a redirect loop.
const MAX_REDIRECTS: usize = 10;

/// Downloads http(s) resources on its own connection pool; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpDownloader {
    client: reqwest::Client,
}

impl HttpDownloader {
    /// A downloader whose every download ends after `timeout` (use
    /// [`DEFAULT_DOWNLOAD_TIMEOUT`] unless configured otherwise).
    ///
    /// # Errors
    /// `Network` when the HTTP client (its TLS backend) cannot be built.
    pub fn new(timeout: Duration) -> Result<Self, DownloadError> {
        reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            // Some servers refuse requests that carry no user agent.
            .user_agent(concat!("agent-runtime/", env!("CARGO_PKG_VERSION")))
            .build()
            .map(|client| Self { client })
            .map_err(|e| DownloadError::Network(boxed(e)))
    }
}

#[async_trait]
impl Downloader for HttpDownloader {
    async fn download(&self, url: &str, max_bytes: u64) -> Result<Downloaded, DownloadError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|_| DownloadError::InvalidUrl(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(DownloadError::InvalidUrl(url.to_owned()));
        }
        let mut response = self.client.get(parsed).send().await.map_err(network)?;
        let status = response.status();
        if !status.is_success() {
            return Err(DownloadError::Status(status.as_u16()));
        }
        let announced = response.content_length();
        if announced.is_some_and(|n| n > max_bytes) {
            return Err(DownloadError::TooLarge(max_bytes));
        }
        let mime_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(essence);
        let file_name = file_name(response.url());

        // The announced length is at most the cap here; without one, grow as chunks come.
        let capacity = usize::try_from(announced.unwrap_or(0)).unwrap_or(0);
        let mut bytes = Vec::with_capacity(capacity);
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(DownloadError::TooLarge(max_bytes));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Downloaded {
            bytes,
            mime_type,
            file_name,
        })
    }
}

fn network(e: reqwest::Error) -> DownloadError {
    DownloadError::Network(boxed(e))
}

/// `Text/Plain; charset=utf-8` → `text/plain`: parameters say nothing about what the file
/// is, and MIME types compare case-insensitively.
fn essence(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next()?.trim();
    (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
}

/// The last non-empty path segment, if it could be a file name on its own. Percent
/// escapes stay as they are; the caller sanitises names for its own file system anyway.
fn file_name(url: &reqwest::Url) -> Option<String> {
    let segment = url.path_segments()?.rev().find(|s| !s.is_empty())?;
    let plain = !matches!(segment, "." | "..")
        && !segment
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    plain.then(|| segment.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essence_drops_parameters_and_case() {
        assert_eq!(
            essence("Text/Plain; charset=utf-8").as_deref(),
            Some("text/plain")
        );
        assert_eq!(essence(" ; x=y"), None);
    }

    #[test]
    fn file_name_is_the_last_non_empty_segment() {
        let name = |u: &str| file_name(&reqwest::Url::parse(u).unwrap());
        assert_eq!(name("http://h/a/b.txt?x=1").as_deref(), Some("b.txt"));
        assert_eq!(name("http://h/a/dir/").as_deref(), Some("dir"));
        assert_eq!(name("http://h/").as_deref(), None);
        assert_eq!(name("http://h/a/%2e%2e/").as_deref(), None);
    }
}
