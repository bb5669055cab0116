//! Fetching a remote resource a caller attached to its input (an input part of type `url`).

use async_trait::async_trait;

use crate::BoxError;

/// A downloaded resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Downloaded {
    pub bytes: Vec<u8>,
    /// From the response's Content-Type, without parameters; `None` when absent.
    pub mime_type: Option<String>,
    /// The last path segment of the final URL, when it names a file.
    pub file_name: Option<String>,
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Not an http(s) URL.
    #[error("unsupported URL: {0}")]
    InvalidUrl(String),
    /// The server answered with a non-success status.
    #[error("the server answered {0}")]
    Status(u16),
    /// The body is larger than the cap.
    #[error("the resource is larger than {0} bytes")]
    TooLarge(u64),
    /// Connection, TLS or timeout failure.
    #[error("download failed: {0}")]
    Network(BoxError),
}

/// Downloads http(s) resources with a size cap and a time limit.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Downloader: Send + Sync {
    /// Downloads `url`, refusing bodies over `max_bytes` (checked while reading, not only
    /// from Content-Length).
    async fn download(&self, url: &str, max_bytes: u64) -> Result<Downloaded, DownloadError>;
}
