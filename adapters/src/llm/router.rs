//! Picks the adapter and credentials from the full model name, so the core only ever sees
//! one `ModelProvider`: `test:…`, `openai:m`, `anthropic:m`, `gw@openai:m`, `gw@anthropic:m`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use ports::{ModelError, ModelProvider, ModelRequest, ModelStream};

use super::{AnthropicProvider, DEFAULT_IDLE_TIMEOUT, HttpClient, OpenAiProvider, TestModel};

const OPENAI_URL: &str = "https://api.openai.com/v1";
const ANTHROPIC_URL: &str = "https://api.anthropic.com/v1";

/// Credentials and location of one provider or gateway (`X_API_KEY` / `X_BASE_URL`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub api_key: Option<String>,
    pub base_url: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// Everything the router needs, as read from the environment by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    pub openai: Endpoint,
    pub anthropic: Endpoint,
    /// Gateways by lower-case name (`mygw` for `MYGW_API_KEY` / `MYGW_BASE_URL`).
    pub gateways: BTreeMap<String, Endpoint>,
    /// Longest silence tolerated from a provider (see `DEFAULT_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            openai: Endpoint::default(),
            anthropic: Endpoint::default(),
            gateways: BTreeMap::new(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    OpenAi,
    Anthropic,
}

/// The routing provider; one HTTP pool serves every provider and gateway.
#[derive(Debug, Clone)]
pub struct ModelRouter {
    settings: LlmSettings,
    http: HttpClient,
}

impl ModelRouter {
    pub fn new(settings: LlmSettings) -> Result<Self, ModelError> {
        Ok(Self {
            settings,
            http: HttpClient::new()?,
        })
    }

    /// The adapter for `model` and the model name it is to be sent.
    fn route<'m>(&self, model: &'m str) -> Result<(Routed, &'m str), ModelError> {
        if model.starts_with("test:") {
            return Ok((Routed::Test(TestModel), model));
        }
        let unknown = || {
            ModelError::UnknownModel(format!(
                "{model} (expected [gateway@]openai:MODEL, [gateway@]anthropic:MODEL or test:…)"
            ))
        };
        let (prefix, bare) = model.split_once(':').ok_or_else(unknown)?;
        if bare.is_empty() {
            return Err(unknown());
        }
        let (gateway, protocol) = match prefix.split_once('@') {
            Some((gateway, protocol)) if !gateway.is_empty() => (Some(gateway), protocol),
            Some(_) => return Err(unknown()),
            None => (None, prefix),
        };
        let protocol = match protocol {
            "openai" => Protocol::OpenAi,
            "anthropic" => Protocol::Anthropic,
            _ => return Err(unknown()),
        };
        let (endpoint, var, default_url) = match (gateway, protocol) {
            (None, Protocol::OpenAi) => {
                (&self.settings.openai, "OPENAI".to_owned(), Some(OPENAI_URL))
            }
            (None, Protocol::Anthropic) => (
                &self.settings.anthropic,
                "ANTHROPIC".to_owned(),
                Some(ANTHROPIC_URL),
            ),
            (Some(gw), _) => {
                let var = gw.to_ascii_uppercase();
                let endpoint = self
                    .settings
                    .gateways
                    .get(&gw.to_ascii_lowercase())
                    .ok_or_else(|| {
                        ModelError::Auth(format!("{var}_API_KEY / {var}_BASE_URL are not set"))
                    })?;
                (endpoint, var, None)
            }
        };
        let base_url = endpoint
            .base_url
            .as_deref()
            .map(|url| api_root(protocol, url))
            .or_else(|| default_url.map(str::to_owned))
            .ok_or_else(|| ModelError::Auth(format!("{var}_BASE_URL is not set")))?;
        // Local OpenAI-compatible servers need no key, but the real API always does.
        let key_optional = protocol == Protocol::OpenAi && endpoint.base_url.is_some();
        if endpoint.api_key.is_none() && !key_optional {
            return Err(ModelError::Auth(format!("{var}_API_KEY is not set")));
        }
        let key = endpoint.api_key.clone();
        let idle = self.settings.idle_timeout;
        let provider = match protocol {
            Protocol::OpenAi => Routed::OpenAi(
                OpenAiProvider::new(self.http.clone(), base_url, key).with_idle_timeout(idle),
            ),
            Protocol::Anthropic => Routed::Anthropic(
                AnthropicProvider::new(self.http.clone(), base_url, key).with_idle_timeout(idle),
            ),
        };
        Ok((provider, bare))
    }
}

/// The URL requests are made under (`…/v1`), from a base URL written as the provider's
/// official SDK takes it: Anthropic's SDK adds `/v1` itself, so its base URL usually has
/// none; OpenAI's includes it, but a bare `http://host:port` of a local server means its
/// `/v1` too. Other paths (`…/api/v1`, `…/v1beta/openai`) are the server's own and kept.
fn api_root(protocol: Protocol, url: &str) -> String {
    let url = url.trim_end_matches('/');
    let has_v1 = url.ends_with("/v1");
    let has_path = url
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('/'));
    match protocol {
        Protocol::Anthropic if !has_v1 => format!("{url}/v1"),
        Protocol::OpenAi if !has_path => format!("{url}/v1"),
        _ => url.to_owned(),
    }
}

/// The adapter a model name routes to.
enum Routed {
    Test(TestModel),
    OpenAi(OpenAiProvider),
    Anthropic(AnthropicProvider),
}

#[async_trait]
impl ModelProvider for ModelRouter {
    async fn stream(&self, request: &ModelRequest) -> Result<ModelStream, ModelError> {
        let (provider, model) = self.route(&request.model)?;
        match provider {
            Routed::Test(test) => test.stream(request).await,
            Routed::OpenAi(openai) => openai.stream_as(model, request).await,
            Routed::Anthropic(anthropic) => anthropic.stream_as(model, request).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_taken_with_or_without_v1() {
        for (protocol, given, used) in [
            (
                Protocol::Anthropic,
                "https://api.anthropic.com",
                "https://api.anthropic.com/v1",
            ),
            (
                Protocol::Anthropic,
                "https://api.anthropic.com/v1/",
                "https://api.anthropic.com/v1",
            ),
            (
                Protocol::Anthropic,
                "http://proxy:8080/anthropic",
                "http://proxy:8080/anthropic/v1",
            ),
            (
                Protocol::OpenAi,
                "http://127.0.0.1:11434",
                "http://127.0.0.1:11434/v1",
            ),
            (
                Protocol::OpenAi,
                "http://127.0.0.1:11434/v1",
                "http://127.0.0.1:11434/v1",
            ),
            (
                Protocol::OpenAi,
                "https://openrouter.ai/api/v1",
                "https://openrouter.ai/api/v1",
            ),
            (
                Protocol::OpenAi,
                "https://generativelanguage.googleapis.com/v1beta/openai/",
                "https://generativelanguage.googleapis.com/v1beta/openai",
            ),
        ] {
            assert_eq!(api_root(protocol, given), used, "{given}");
        }
    }

    fn router(settings: LlmSettings) -> ModelRouter {
        ModelRouter::new(settings).unwrap()
    }

    fn err(router: &ModelRouter, model: &str) -> ModelError {
        match router.route(model) {
            Ok(_) => panic!("{model} should not route"),
            Err(e) => e,
        }
    }

    #[test]
    fn names_the_missing_variable() {
        let r = router(LlmSettings::default());
        assert_eq!(
            err(&r, "openai:gpt-4o"),
            ModelError::Auth("OPENAI_API_KEY is not set".into())
        );
        assert_eq!(
            err(&r, "anthropic:claude"),
            ModelError::Auth("ANTHROPIC_API_KEY is not set".into())
        );
        assert_eq!(
            err(&r, "MyGw@openai:qwen3"),
            ModelError::Auth("MYGW_API_KEY / MYGW_BASE_URL are not set".into())
        );
    }

    #[test]
    fn rejects_malformed_names() {
        let r = router(LlmSettings::default());
        for name in ["gpt-4o", "openai:", "google:gemini", "@openai:m", "gw@x:m"] {
            assert!(
                matches!(err(&r, name), ModelError::UnknownModel(_)),
                "{name}"
            );
        }
    }

    #[test]
    fn local_openai_server_needs_no_key_and_keeps_colons() {
        let mut settings = LlmSettings::default();
        settings.openai.base_url = Some("http://127.0.0.1:1/v1".into());
        let (_, model) = router(settings).route("openai:qwen3:8b").unwrap();
        assert_eq!(model, "qwen3:8b");
    }
}
