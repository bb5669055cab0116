//! A circuit breaker per provider endpoint: after `failures` outages in a row (connection
//! errors, 5xx, 429) an endpoint is skipped for `cool_down`, so runs fail over to their
//! fallback models at once instead of waiting through the retries of a provider that is
//! down. After the cool-down one request is let through (half-open): its success closes
//! the breaker, its failure opens it again.
//!
//! The endpoint of a model is its routing prefix: `openai`, `anthropic`, or the gateway of
//! `gw@provider:model`; the built-in `test:` models have none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use ports::{ModelError, ModelProvider, ModelRequest, ModelStream};

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Outages in a row that open the breaker.
    pub failures: u32,
    pub cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures_in_a_row: u32,
    /// Set while open: requests are refused until then.
    open_until: Option<Instant>,
    /// A half-open trial request is out until then; others are refused meanwhile. It
    /// expires, so a trial whose stream was dropped unread cannot keep the breaker shut.
    trial_until: Option<Instant>,
}

/// Wraps a provider with one breaker per endpoint.
pub struct CircuitBreakers {
    inner: Arc<dyn ModelProvider>,
    settings: BreakerSettings,
    breakers: Arc<Mutex<HashMap<String, Breaker>>>,
}

impl CircuitBreakers {
    pub fn new(inner: Arc<dyn ModelProvider>, settings: BreakerSettings) -> Self {
        Self {
            inner,
            settings,
            breakers: Arc::default(),
        }
    }

    /// Whether a request to `endpoint` may go out now (taking the half-open trial).
    fn admit(&self, endpoint: &str) -> Result<(), ModelError> {
        let mut breakers = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        let breaker = breakers.entry(endpoint.to_owned()).or_default();
        let Some(until) = breaker.open_until else {
            return Ok(());
        };
        let now = Instant::now();
        if now < until || breaker.trial_until.is_some_and(|t| now < t) {
            let left = until.saturating_duration_since(Instant::now()).as_secs();
            return Err(ModelError::CircuitOpen(format!(
                "{endpoint} failed {} times in a row; not tried again for {left} s",
                breaker.failures_in_a_row
            )));
        }
        breaker.trial_until = Some(now + self.settings.cool_down);
        Ok(())
    }
}

/// Records an outcome on the shared breakers.
fn record(
    breakers: &Mutex<HashMap<String, Breaker>>,
    settings: BreakerSettings,
    endpoint: &str,
    outage: bool,
) {
    let mut breakers = breakers.lock().unwrap_or_else(PoisonError::into_inner);
    let breaker = breakers.entry(endpoint.to_owned()).or_default();
    breaker.trial_until = None;
    if !outage {
        *breaker = Breaker::default();
        return;
    }
    breaker.failures_in_a_row = breaker.failures_in_a_row.saturating_add(1);
    let was_open = breaker.open_until.is_some();
    if was_open || breaker.failures_in_a_row >= settings.failures {
        if !was_open {
            tracing::warn!(
                endpoint,
                failures = breaker.failures_in_a_row,
                "model endpoint circuit opened"
            );
        }
        breaker.open_until = Some(Instant::now() + settings.cool_down);
    }
}

/// The endpoint `model` is sent to; `None` for the built-in test models.
pub fn endpoint_of(model: &str) -> Option<&str> {
    if model.starts_with("test:") {
        return None;
    }
    let route = model.split_once(':').map_or(model, |(route, _)| route);
    Some(route.split_once('@').map_or(route, |(gateway, _)| gateway))
}

#[async_trait]
impl ModelProvider for CircuitBreakers {
    async fn stream(&self, request: &ModelRequest) -> Result<ModelStream, ModelError> {
        let Some(endpoint) = endpoint_of(&request.model) else {
            return self.inner.stream(request).await;
        };
        self.admit(endpoint)?;
        let (breakers, settings) = (self.breakers.clone(), self.settings);
        match self.inner.stream(request).await {
            Err(e) => {
                record(&breakers, settings, endpoint, e.is_outage());
                Err(e)
            }
            Ok(stream) => {
                // The verdict waits for the stream's first item: a 200 whose body fails at
                // once is an outage too.
                let endpoint = endpoint.to_owned();
                let mut judged = false;
                Ok(stream
                    .map(move |item| {
                        if !judged {
                            judged = true;
                            let outage = matches!(&item, Err(e) if e.is_outage());
                            record(&breakers, settings, &endpoint, outage);
                        }
                        item
                    })
                    .boxed())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_routing_prefixes() {
        assert_eq!(endpoint_of("openai:gpt-4o"), Some("openai"));
        assert_eq!(endpoint_of("anthropic:claude"), Some("anthropic"));
        assert_eq!(endpoint_of("gw@anthropic:claude"), Some("gw"));
        assert_eq!(endpoint_of("test:echo"), None);
    }

    #[test]
    fn opens_after_the_failures_and_half_opens_after_the_cool_down() {
        let settings = BreakerSettings {
            failures: 2,
            cool_down: Duration::from_millis(50),
        };
        let b = CircuitBreakers::new(Arc::new(crate::llm::TestModel), settings);
        assert!(b.admit("x").is_ok());
        record(&b.breakers, settings, "x", true);
        assert!(b.admit("x").is_ok(), "one failure does not open it");
        record(&b.breakers, settings, "x", true);
        assert!(matches!(b.admit("x"), Err(ModelError::CircuitOpen(_))));
        assert!(b.admit("y").is_ok(), "breakers are per endpoint");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admit("x").is_ok(), "half-open: one trial");
        assert!(b.admit("x").is_err(), "only one");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admit("x").is_ok(), "a trial that never reported expires");
        record(&b.breakers, settings, "x", true);
        assert!(b.admit("x").is_err(), "a failed trial opens it again");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admit("x").is_ok());
        record(&b.breakers, settings, "x", false);
        assert!(
            b.admit("x").is_ok() && b.admit("x").is_ok(),
            "a success closes it"
        );
    }
}
