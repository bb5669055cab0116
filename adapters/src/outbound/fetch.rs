//! GET through the outbound policy: resolve, check, connect to the checked addresses only,
//! follow redirects by hand.
//!
//! Each hop gets its own short-lived reqwest client whose only resolutions are the checked
//! addresses of that hop's host (`resolve_to_addrs`) and whose resolver refuses every other
//! name. reqwest's own resolver hook never learns the port, and an exemption such as
//! `127.0.0.1:8080` depends on it, so the check happens here, where host and port are both
//! known. No proxy is used: a proxy would connect on our behalf to unchecked addresses.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::{
    StatusCode, Url,
    dns::{Addrs, Name, Resolve, Resolving},
    header::LOCATION,
};
use tokio::time::Instant;

use super::OutboundPolicy;

/// At most this many redirects are followed; each is checked like the first URL.
pub const MAX_REDIRECTS: usize = 5;

/// A host that cannot be reached in this time is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an outbound request did not happen or failed. The text is for the service's log:
/// callers are told only that the URL could not be fetched, whatever the reason, so they
/// cannot map the network behind the service (a refused address, a closed port and a 401
/// look the same).
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// Not an http(s) URL; nothing was contacted.
    #[error("not an http(s) URL")]
    InvalidUrl,
    /// The policy refused a destination (the first URL or a redirect).
    #[error("refused by the outbound policy: {0}")]
    Refused(String),
    /// DNS, connection, TLS, timeout, or too many redirects.
    #[error("{0}")]
    Failed(String),
}

/// Sends GET requests to policy-checked destinations; cheap to clone.
#[derive(Debug, Clone)]
pub struct OutboundClient {
    policy: Arc<OutboundPolicy>,
    user_agent: String,
}

/// The checked addresses of one hop.
struct Destination {
    /// The host name, when the URL names one (IP literals need no resolution).
    name: Option<String>,
    addrs: Vec<SocketAddr>,
}

impl OutboundClient {
    /// A client applying `policy`, sending `user_agent` (some servers refuse requests
    /// without one).
    pub fn new(policy: OutboundPolicy, user_agent: impl Into<String>) -> Self {
        Self {
            policy: Arc::new(policy),
            user_agent: user_agent.into(),
        }
    }

    /// GETs `url` and returns the final response, of any status but a redirect, with its
    /// body unread. Everything, body included, must finish within `timeout`.
    ///
    /// # Errors
    /// `InvalidUrl` when `url` is not http(s); `Refused` when a hop's destination is not
    /// allowed; `Failed` for every network failure and for more than [`MAX_REDIRECTS`]
    /// redirects.
    pub async fn get(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<reqwest::Response, OutboundError> {
        let mut url = Url::parse(url).map_err(|_| OutboundError::InvalidUrl)?;
        if !is_http(&url) {
            return Err(OutboundError::InvalidUrl);
        }
        let deadline = Instant::now() + timeout;
        for _ in 0..=MAX_REDIRECTS {
            let response = self.hop(&url, deadline).await?;
            match redirect_target(&url, &response)? {
                Some(next) => url = next,
                None => return Ok(response),
            }
        }
        Err(OutboundError::Failed(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// A client for a long-lived connection to `url`'s origin (an MCP server): its host
    /// resolved and checked once, here, and fixed; no redirects; `headers` on every
    /// request. Connect with a new client to re-resolve.
    ///
    /// # Errors
    /// As [`Self::get`] for the URL and its host; `Failed` for a header that is not one.
    pub async fn pinned(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<reqwest::Client, OutboundError> {
        let url = Url::parse(url).map_err(|_| OutboundError::InvalidUrl)?;
        if !is_http(&url) {
            return Err(OutboundError::InvalidUrl);
        }
        let dest = tokio::time::timeout(CONNECT_TIMEOUT, self.destination(&url))
            .await
            .map_err(|_| OutboundError::Failed("timed out resolving the host".into()))??;
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| OutboundError::Failed(format!("{name} is not a header name")))?;
            let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                OutboundError::Failed(format!("the value of header {name} is not valid"))
            })?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(self.user_agent.clone())
            .default_headers(map)
            .dns_resolver(NoResolver);
        if let Some(name) = &dest.name {
            builder = builder.resolve_to_addrs(name, &dest.addrs);
        }
        builder
            .build()
            .map_err(|e| OutboundError::Failed(format!("building the HTTP client: {e}")))
    }

    /// One request to `url`, connected only to its checked addresses.
    async fn hop(&self, url: &Url, deadline: Instant) -> Result<reqwest::Response, OutboundError> {
        let remaining = time_left(deadline)?;
        let dest = tokio::time::timeout(remaining, self.destination(url))
            .await
            .map_err(|_| OutboundError::Failed("timed out resolving the host".into()))??;
        let remaining = time_left(deadline)?;
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(remaining))
            .timeout(remaining)
            .user_agent(self.user_agent.clone())
            .dns_resolver(NoResolver);
        if let Some(name) = &dest.name {
            builder = builder.resolve_to_addrs(name, &dest.addrs);
        }
        let client = builder
            .build()
            .map_err(|e| OutboundError::Failed(format!("building the HTTP client: {e}")))?;
        client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| OutboundError::Failed(error_chain(&e)))
    }

    /// Resolves the host of `url` and keeps the addresses the policy allows.
    async fn destination(&self, url: &Url) -> Result<Destination, OutboundError> {
        let port = url
            .port_or_known_default()
            .ok_or(OutboundError::InvalidUrl)?;
        let ip = match url.host() {
            None => return Err(OutboundError::InvalidUrl),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(name)) => return self.resolve(name, port).await,
        };
        let addr = SocketAddr::new(ip, port);
        self.policy
            .check_addr(addr)
            .map_err(|why| OutboundError::Refused(format!("{addr} is {why}")))?;
        Ok(Destination {
            name: None,
            addrs: vec![addr],
        })
    }

    async fn resolve(&self, name: &str, port: u16) -> Result<Destination, OutboundError> {
        let found = tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| OutboundError::Failed(format!("resolving {name}: {e}")))?;
        let exempt = self.policy.allow.covers_name(name, port);
        let mut refused = Vec::new();
        let addrs: Vec<SocketAddr> = found
            .filter(|addr| {
                let verdict = if exempt {
                    Ok(())
                } else {
                    self.policy.check_addr(*addr)
                };
                if let Err(why) = verdict {
                    refused.push(format!("{addr} is {why}"));
                }
                verdict.is_ok()
            })
            .collect();
        if addrs.is_empty() {
            let why = if refused.is_empty() {
                "no address".to_owned()
            } else {
                refused.join(", ")
            };
            return Err(OutboundError::Refused(format!("{name}: {why}")));
        }
        Ok(Destination {
            name: Some(name.to_owned()),
            addrs,
        })
    }
}

fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
}

/// The next URL when `response` is a redirect; a redirect without a usable `Location` is
/// a failure (the caller asked for a resource, not for a redirect).
fn redirect_target(
    current: &Url,
    response: &reqwest::Response,
) -> Result<Option<Url>, OutboundError> {
    let status = response.status();
    if !matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    ) {
        return Ok(None);
    }
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| OutboundError::Failed(format!("{status} without a Location")))?;
    let next = current
        .join(location)
        .map_err(|_| OutboundError::Failed(format!("{status} to a bad Location")))?;
    if !is_http(&next) {
        return Err(OutboundError::Refused(format!(
            "redirect to a {} URL",
            next.scheme()
        )));
    }
    Ok(Some(next))
}

fn time_left(deadline: Instant) -> Result<Duration, OutboundError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(OutboundError::Failed("timed out".into()));
    }
    Ok(left)
}

/// `error sending request: connection refused`: reqwest's top line alone rarely says what
/// went wrong.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The resolver of every hop client: names are resolved and checked before the client
/// exists and handed to it as fixed resolutions, so any other lookup is refused.
struct NoResolver;

impl Resolve for NoResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let refused = format!("{} was not resolved by the outbound policy", name.as_str());
        Box::pin(async move { Err::<Addrs, _>(refused.into()) })
    }
}
