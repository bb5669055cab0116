//! `ports::Downloader` over the outbound policy: fetches what a caller attached as a `url`
//! input part, from destinations the policy allows only (see [`crate::outbound`]).
//!
//! The cap is checked twice: against Content-Length before the body is read, so an
//! announced giant fails at once, and again chunk by chunk, because chunked responses
//! announce nothing and a body is never buffered past the cap. One total timeout covers
//! resolution, connect, redirects and body, so a trickling server cannot hold a run's
//! setup forever. Every failure but an oversize body is the same
//! [`DownloadError::Unavailable`]; the reason goes to the log.

use std::time::Duration;

use async_trait::async_trait;
use ports::{DownloadError, Downloaded, Downloader};

use crate::outbound::{OutboundClient, OutboundError, OutboundPolicy};

/// Total time a download may take when the caller does not choose.
pub const DEFAULT_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Downloads http(s) resources through the outbound policy; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpDownloader {
    client: OutboundClient,
    timeout: Duration,
}

impl HttpDownloader {
    /// A downloader reaching what `policy` allows, whose every download ends after
    /// `timeout` (use [`DEFAULT_DOWNLOAD_TIMEOUT`] unless configured otherwise).
    pub fn new(policy: OutboundPolicy, timeout: Duration) -> Self {
        Self {
            client: OutboundClient::new(
                policy,
                concat!("agent-runtime/", env!("CARGO_PKG_VERSION")),
            ),
            timeout,
        }
    }

    async fn fetch(&self, url: &str, max_bytes: u64) -> Result<Downloaded, Failure> {
        let mut response = self.client.get(url, self.timeout).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Other(format!("the server answered {status}")));
        }
        let announced = response.content_length();
        if announced.is_some_and(|n| n > max_bytes) {
            return Err(Failure::TooLarge);
        }
        let mime_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(essence);
        let file_name = file_name(response.url());
        let final_url = response.url().to_string();

        // The announced length is at most the cap here; without one, grow as chunks come.
        let capacity = usize::try_from(announced.unwrap_or(0)).unwrap_or(0);
        let mut bytes = Vec::with_capacity(capacity);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Other(format!("reading the body: {e}")))?
        {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(Failure::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Downloaded {
            bytes,
            mime_type,
            file_name,
            final_url,
        })
    }
}

/// Why a download failed, before it is made coarse for the caller.
enum Failure {
    Outbound(OutboundError),
    TooLarge,
    Other(String),
}

impl From<OutboundError> for Failure {
    fn from(e: OutboundError) -> Self {
        Self::Outbound(e)
    }
}

#[async_trait]
impl Downloader for HttpDownloader {
    async fn download(&self, url: &str, max_bytes: u64) -> Result<Downloaded, DownloadError> {
        let reason = match self.fetch(url, max_bytes).await {
            Ok(downloaded) => return Ok(downloaded),
            Err(Failure::TooLarge) => return Err(DownloadError::TooLarge(max_bytes)),
            Err(Failure::Outbound(OutboundError::InvalidUrl)) => {
                return Err(DownloadError::InvalidUrl(url.to_owned()));
            }
            Err(Failure::Outbound(e)) => e.to_string(),
            Err(Failure::Other(reason)) => reason,
        };
        // The caller learns nothing but "unavailable"; the admin learns why. The origin
        // only: paths and queries may carry tokens.
        let origin = reqwest::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        tracing::info!(%origin, %reason, "download failed");
        Err(DownloadError::Unavailable)
    }
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
