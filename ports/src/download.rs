//! Fetching a remote resource a caller attached to its input (an input part of type `url`).

use async_trait::async_trait;

/// A downloaded resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Downloaded {
    pub bytes: Vec<u8>,
    /// From the response's Content-Type, without parameters; `None` when absent.
    pub mime_type: Option<String>,
    /// The last path segment of the final URL, when it names a file.
    pub file_name: Option<String>,
    /// The URL the body came from, after redirects.
    pub final_url: String,
}

/// Why a download failed.
///
/// Deliberately coarse: a URL comes from a caller or a model, and telling "refused by
/// policy" from "connection refused" from "answered 401" would let it map the network
/// behind the service. The adapter logs the real reason for the admin.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Not an http(s) URL (known from the text alone; nothing was contacted).
    #[error("unsupported URL: {0}")]
    InvalidUrl(String),
    /// Refused by the outbound policy, unresolvable, unreachable, timed out, answered with
    /// a non-success status or too many redirects: one variant and one text for all.
    #[error("could not be downloaded")]
    Unavailable,
    /// The body is larger than the cap. Only a destination the policy allows and that
    /// answered with success gets this far, so it says nothing about refused ones.
    #[error("the resource is larger than {0} bytes")]
    TooLarge(u64),
}

/// Downloads http(s) resources with a size cap and a time limit.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Downloader: Send + Sync {
    /// Downloads `url`, refusing bodies over `max_bytes` (checked while reading, not only
    /// from Content-Length).
    async fn download(&self, url: &str, max_bytes: u64) -> Result<Downloaded, DownloadError>;
}
