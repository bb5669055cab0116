//! Webhooks: each notification a webhook's filter takes is POSTed to it in its own task,
//! as our JSON (optionally signed with HMAC-SHA256), or in the formats of ntfy and Gotify
//! so a phone is told when a run finishes. A failed delivery (connection error, 429, 5xx)
//! is retried with backoff; none ever holds up the service.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use ports::{Notification, NotificationKind, NotificationSink};
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::Semaphore;

/// Deliveries in flight at once, over every webhook; more wait for a slot in their task.
const MAX_IN_FLIGHT: usize = 64;

/// One attempt's time limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The header carrying `sha256=<hex HMAC of the body>` when the webhook has a secret.
pub const SIGNATURE_HEADER: &str = "x-agent-runtime-signature";

/// How a webhook's body is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The notification as JSON.
    #[default]
    Json,
    /// ntfy: a text message POSTed to the topic URL, with a `Title` header.
    Ntfy,
    /// Gotify: `{title, message, priority}` POSTed to `…/message?token=…`.
    Gotify,
}

/// One webhook (an item of `WEBHOOKS`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// The kinds it takes; none listed: all.
    #[serde(default)]
    pub events: Vec<NotificationKind>,
    /// Signs each body: `x-agent-runtime-signature: sha256=<hex HMAC-SHA256>`.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub format: WebhookFormat,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("events", &self.events)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    fn takes(&self, kind: NotificationKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

/// When a failed delivery is tried again.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRetries {
    /// Attempts in total.
    pub attempts: u32,
    /// The wait before the first retry; doubled for each next one.
    pub first_backoff: Duration,
}

impl Default for WebhookRetries {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_secs(1),
        }
    }
}

/// The configured webhooks, as a notification sink.
pub struct Webhooks {
    hooks: Vec<Arc<WebhookConfig>>,
    http: reqwest::Client,
    retries: WebhookRetries,
    slots: Arc<Semaphore>,
}

impl Webhooks {
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(hooks: Vec<WebhookConfig>, retries: WebhookRetries) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            hooks: hooks.into_iter().map(Arc::new).collect(),
            http,
            retries,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }
}

impl NotificationSink for Webhooks {
    fn deliver(&self, notification: &Notification) {
        for hook in self
            .hooks
            .iter()
            .filter(|h| h.takes(notification.body.kind))
        {
            let delivery = Delivery {
                request: request(hook, notification),
                http: self.http.clone(),
                retries: self.retries,
                id: notification.id,
            };
            let slots = self.slots.clone();
            tokio::spawn(async move {
                let Ok(_slot) = slots.acquire_owned().await else {
                    return;
                };
                delivery.run().await;
            });
        }
    }
}

/// A prepared request: where, what, which headers.
struct Prepared {
    url: String,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

struct Delivery {
    request: Prepared,
    http: reqwest::Client,
    retries: WebhookRetries,
    id: u64,
}

impl Delivery {
    async fn run(self) {
        let mut backoff = self.retries.first_backoff;
        for attempt in 1..=self.retries.attempts.max(1) {
            match self.attempt().await {
                Ok(()) => return,
                Err(Failure::Final(why)) => {
                    tracing::warn!(notification = self.id, why, "webhook delivery refused");
                    return;
                }
                Err(Failure::Retry(why)) if attempt < self.retries.attempts => {
                    tracing::info!(
                        notification = self.id,
                        attempt,
                        why,
                        "webhook delivery failed; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(Failure::Retry(why)) => {
                    tracing::warn!(
                        notification = self.id,
                        attempt,
                        why,
                        "webhook delivery given up"
                    );
                }
            }
        }
    }

    async fn attempt(&self) -> Result<(), Failure> {
        let mut request = self
            .http
            .post(&self.request.url)
            .body(self.request.body.clone());
        for (name, value) in &self.request.headers {
            request = request.header(*name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(Failure::Retry(format!("HTTP {status}")))
        } else {
            Err(Failure::Final(format!("HTTP {status}")))
        }
    }
}

enum Failure {
    Retry(String),
    Final(String),
}

/// The request of `n` for `hook`, in its format, signed when it has a secret.
fn request(hook: &WebhookConfig, n: &Notification) -> Prepared {
    let kind = n.body.kind.as_str();
    let (body, content_type, mut headers) = match hook.format {
        WebhookFormat::Json => (
            serde_json::to_vec(n).unwrap_or_default(),
            "application/json",
            Vec::new(),
        ),
        WebhookFormat::Ntfy => (
            summary(n).into_bytes(),
            "text/plain; charset=utf-8",
            vec![("title", title(n)), ("tags", "robot".to_owned())],
        ),
        WebhookFormat::Gotify => (
            serde_json::to_vec(&serde_json::json!({
                "title": title(n),
                "message": summary(n),
                "priority": 5,
            }))
            .unwrap_or_default(),
            "application/json",
            Vec::new(),
        ),
    };
    headers.push(("content-type", content_type.to_owned()));
    headers.push(("x-agent-runtime-event", kind.to_owned()));
    headers.push(("x-agent-runtime-delivery", n.id.to_string()));
    if let Some(secret) = &hook.secret {
        headers.push((SIGNATURE_HEADER, signature(secret, &body)));
    }
    Prepared {
        url: hook.url.clone(),
        body,
        headers,
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length: the error case cannot happen.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A phone notification's title.
fn title(n: &Notification) -> String {
    format!("agent-runtime: {}", n.body.kind.as_str().replace('_', " "))
}

/// One line saying what happened.
fn summary(n: &Notification) -> String {
    let b = &n.body;
    let mut text = match &b.session_id {
        Some(session) => format!("session {session} of conversation {}", b.conversation_id),
        None => format!("conversation {}", b.conversation_id),
    };
    if let Some(status) = b.status {
        text.push_str(&format!(": {}", status.as_str()));
    }
    if let Some(name) = &b.subagent {
        text.push_str(&format!(" (subagent {name})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn webhooks_are_read_from_json_with_defaults() {
        let hooks: Vec<WebhookConfig> = serde_json::from_str(
            r#"[{"url": "http://a/x"}, {"url": "https://ntfy.sh/t", "events": ["session_finished"], "format": "ntfy", "secret": "s"}]"#,
        )
        .unwrap();
        assert_eq!(hooks[0].format, WebhookFormat::Json);
        assert!(hooks[0].takes(NotificationKind::MailboxUpdated));
        assert!(!hooks[1].takes(NotificationKind::SessionStarted));
        assert!(
            serde_json::from_str::<Vec<WebhookConfig>>(r#"[{"url": "x", "evnts": []}]"#).is_err()
        );
        assert!(
            !format!("{:?}", hooks[1]).contains("secret"),
            "no secret in logs"
        );
    }
}
