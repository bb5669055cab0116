//! Wiring: the one place that names concrete adapters. `build` turns a config into a
//! ready application (migrated, recovered, seeded); `serve` runs it on a listener the
//! caller bound. `main.rs` and the tests call both.

use std::{future::Future, sync::Arc, time::Duration};

use adapters::{
    download::{DEFAULT_DOWNLOAD_TIMEOUT, HttpDownloader},
    environment::HostEnvironments,
    event_bus::{BusSettings, InProcessBus, RedisBus},
    llm::{BreakerSettings, CircuitBreakers, Endpoint, LlmSettings, ModelRouter},
    mcp::McpServers,
    metrics::{MeteredProvider, Prometheus},
    sql::{SqlSettings, SqlStorage, SqlTarget},
    state_store::{OpendalStateStore, S3Settings},
    web_services::{Firecrawl, GoogleSearch, Tavily},
    webhooks::{WebhookRetries, Webhooks},
};
use anyhow::Context;
use poem::EndpointExt;
use ports::{
    EventBus, Metrics, ModelProvider, NotificationSink, Scraper, StateStore, ToolServers, WebSearch,
};
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, ApiState, HttpSettings, edge::EdgeLimits, health::Deployment},
    boundary,
    config::{
        BrowserConfig, Config, DatabaseConfig, EdgeConfig, ProviderCredentials, StateStoreConfig,
        WebServicesConfig,
    },
    core::{
        chat::ChatService,
        execution::{
            Execution, ModelRetries, Ports, RetentionPolicy, Retries, Settings, keep_sweeping,
        },
        health::HealthCheck,
        limits::FileLimits,
        notifications::Notifier,
        presets::{AvailableProviders, PresetService},
        recovery::{Recovery, fail_orphaned_sessions},
        redact::Redactor,
    },
};

/// A built application, ready to serve.
pub struct App {
    state: Arc<ApiState>,
    auth_token: String,
    /// True when no `AUTH_TOKEN` was configured and one was generated.
    pub auth_token_generated: bool,
    max_body_bytes: usize,
    shutdown_grace: Duration,
    edge: EdgeConfig,
    browser: BrowserConfig,
    metrics_public: bool,
    retention: Option<RetentionPolicy>,
}

impl App {
    /// The bearer token callers must present.
    pub fn auth_token(&self) -> &str {
        &self.auth_token
    }
}

/// Connects the backends chosen by `config`, applies migrations, fails sessions orphaned
/// by a crash and seeds the default preset: when this returns, the API may accept requests.
pub async fn build(config: &Config) -> anyhow::Result<App> {
    let boundary = boundary::prepare(config)?;
    let storage = migrated_storage(&config.database).await?;
    let event_bus = event_bus(config)?;
    let state_store = state_store(&config.state_store)?;
    recover(&storage, &*event_bus).await?;
    report_sandbox(config, &boundary);
    let environments = host_environments(&boundary);
    let tool_servers = tool_servers(&environments, config);
    let presets = PresetService::new(storage.clone(), environments.clone())
        .with_tool_servers(tool_servers.clone());
    seed_default_preset(config, &presets).await?;

    let (auth_token, auth_token_generated) = auth_token(config)?;
    let metrics = metrics(&storage);
    let notifier = notifier(config, &storage)?;
    let health = HealthCheck::new(
        storage.clone(),
        event_bus.clone(),
        state_store.clone(),
        HEALTH_TIMEOUT,
    )
    .with_sandbox(boundary.sandbox.landlock);
    let execution = Execution::new(
        Ports {
            presets: storage.clone(),
            conversations: storage.clone(),
            sessions: storage.clone(),
            mailbox: storage.clone(),
            state_store,
            bus: event_bus,
            provider: Arc::new(MeteredProvider::new(
                model_provider(config)?,
                metrics.clone(),
            )),
            environments,
            downloader: Arc::new(HttpDownloader::new(
                config.fetch.clone(),
                DEFAULT_DOWNLOAD_TIMEOUT,
            )),
            search: web_search(&config.web)?,
            scraper: scraper(&config.web)?,
            tool_servers,
            metrics: metrics.clone(),
            notifier: notifier.clone(),
        },
        run_settings(config, &auth_token),
    );
    let chat = ChatService::new(
        execution.runs.clone(),
        storage.clone(),
        storage.clone(),
        storage.clone(),
    );
    let state = ApiState {
        presets,
        chat,
        health,
        deployment: deployment(config),
        runs: execution.runs,
        live: execution.live,
        queries: execution.queries,
        retention: execution.retention,
        retries: Retries::new(storage.clone()),
        metrics,
        notifier,
    };
    Ok(app(config, state, auth_token, auth_token_generated))
}

/// The built application around its API state.
fn app(config: &Config, state: ApiState, auth_token: String, generated: bool) -> App {
    App {
        state: Arc::new(state),
        auth_token,
        auth_token_generated: generated,
        max_body_bytes: config.max_body_bytes,
        shutdown_grace: config.shutdown_grace,
        edge: config.edge,
        browser: config.browser.clone(),
        metrics_public: config.metrics_public,
        retention: config.retention,
    }
}

/// The notification log on the database, with the configured webhooks as its sink.
fn notifier(config: &Config, storage: &Arc<SqlStorage>) -> anyhow::Result<Arc<Notifier>> {
    let mut sinks: Vec<Arc<dyn NotificationSink>> = Vec::new();
    if !config.webhooks.is_empty() {
        sinks.push(Arc::new(
            Webhooks::new(config.webhooks.clone(), WebhookRetries::default())
                .context("building the HTTP client for webhooks")?,
        ));
    }
    Ok(Notifier::start(storage.clone(), sinks))
}

/// The service's metrics, the SQL pool's gauges sampled from `storage` when scraped.
fn metrics(storage: &Arc<SqlStorage>) -> Arc<dyn Metrics> {
    let metrics = Prometheus::new();
    let storage = storage.clone();
    metrics.sample_pool(move || storage.pool_use());
    Arc::new(metrics)
}

/// Fails the sessions a previous process left running (startup recovery).
async fn recover(storage: &SqlStorage, bus: &dyn EventBus) -> anyhow::Result<()> {
    fail_orphaned_sessions(&Recovery {
        sessions: storage,
        mailbox: storage,
        bus,
    })
    .await
    .context("startup recovery failed")?;
    Ok(())
}

/// How long health waits for each backend.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The backends in use, for `GET /api/info`.
fn deployment(config: &Config) -> Deployment {
    Deployment {
        database: match config.database {
            DatabaseConfig::Sqlite { .. } => "sqlite",
            DatabaseConfig::Postgres { .. } => "postgres",
        },
        event_bus: if config.redis_url.is_some() {
            "redis"
        } else {
            "in_process"
        },
        state_store: match config.state_store {
            StateStoreConfig::Local { .. } => "local",
            StateStoreConfig::S3 { .. } => "s3",
        },
        started: std::time::Instant::now(),
    }
}

/// The database, its migrations applied.
async fn migrated_storage(database: &DatabaseConfig) -> anyhow::Result<Arc<SqlStorage>> {
    let storage = connect_storage(database).await?;
    storage
        .migrate()
        .await
        .context("DATABASE_URL: applying migrations failed")?;
    Ok(Arc::new(storage))
}

/// `AUTH_TOKEN`, or the token stored on a first start without one (`true`: generated).
fn auth_token(config: &Config) -> anyhow::Result<(String, bool)> {
    Ok(match &config.auth_token {
        Some(token) => (token.expose().to_owned(), false),
        None => (boundary::stored_token(config)?, true),
    })
}

/// The presets' MCP servers: stdio ones in their preset's environment, HTTP ones under
/// the outbound policy of model-chosen URLs.
fn tool_servers(environments: &Arc<HostEnvironments>, config: &Config) -> Arc<dyn ToolServers> {
    Arc::new(McpServers::new(environments.clone(), config.fetch.clone()))
}

/// Redis when `REDIS_URL` is set, else the in-process bus.
fn event_bus(config: &Config) -> anyhow::Result<Arc<dyn EventBus>> {
    let settings = BusSettings {
        ttl: config.stream_ttl,
        ..BusSettings::default()
    };
    Ok(match &config.redis_url {
        Some(url) => {
            let root_cert = match &config.redis_ca_file {
                Some(file) => Some(
                    std::fs::read(file)
                        .with_context(|| format!("REDIS_CA_FILE: reading {}", file.display()))?,
                ),
                None => None,
            };
            Arc::new(
                RedisBus::with_root_cert(url.expose(), root_cert, settings).context("REDIS_URL")?,
            )
        }
        None => Arc::new(InProcessBus::new(settings)),
    })
}

/// Says in the log what the sandbox cannot enforce here, and kills commands a previous
/// process left running in its cgroups.
fn report_sandbox(config: &Config, boundary: &boundary::Boundary) {
    if !boundary.sandbox.landlock {
        tracing::warn!(
            required = config.sandbox.required,
            "this kernel does not enforce Landlock: shell commands run without their \
             filesystem sandbox (SANDBOX_REQUIRED=true refuses them instead)"
        );
    }
    if let Some(cgroups) = &boundary.sandbox.cgroups {
        let swept = cgroups.sweep();
        if swept > 0 {
            tracing::warn!(swept, "killed commands left running by a previous process");
        }
    } else {
        tracing::info!(
            "no pids cgroup available: shell commands' process count is bounded by rlimits only"
        );
    }
}

/// Seeds the default preset on a first start, for the providers that have a key.
async fn seed_default_preset(config: &Config, presets: &PresetService) -> anyhow::Result<()> {
    let providers = AvailableProviders {
        openai: config.openai.api_key.is_some(),
        anthropic: config.anthropic.api_key.is_some(),
    };
    if let Some(seeded) = presets
        .seed_default(providers)
        .await
        .context("seeding the default preset")?
    {
        tracing::info!(preset_id = %seeded.preset_id, model = %seeded.model.name, "seeded the default preset");
    }
    Ok(())
}

/// Tunables of every run; every secret the service holds, the token included, is scrubbed
/// from tool output.
fn run_settings(config: &Config, auth_token: &str) -> Settings {
    Settings {
        redactor: Redactor::new(
            config
                .secret_values()
                .into_iter()
                .chain(std::iter::once(auth_token.to_owned())),
        ),
        files: FileLimits {
            max_file_bytes: config.max_file_bytes,
        },
        max_concurrent_runs: config.max_concurrent_runs,
        title_model: config.title_model.clone(),
        retry: ModelRetries {
            max_attempts: config.model_max_retries.saturating_add(1),
            ..ModelRetries::default()
        },
        ..Settings::default()
    }
}

/// Applies migrations only (`agent-runtime migrate`); returns how many ran.
pub async fn migrate(config: &Config) -> anyhow::Result<usize> {
    let storage = connect_storage(&config.database).await?;
    storage
        .migrate()
        .await
        .context("DATABASE_URL: applying migrations failed")
}

/// Serves until `shutdown` resolves: running runs get the grace period to finish, then
/// the listener closes and open requests get a moment to end (see `api::edge`).
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let runs = app.state.runs.clone();
    let grace = app.shutdown_grace;
    let sweeps = CancellationToken::new();
    let sweeper = app.retention.map(|policy| {
        tokio::spawn(keep_sweeping(
            app.state.retention.clone(),
            policy,
            sweeps.clone(),
        ))
    });
    let endpoint = api::endpoint(
        app.state,
        HttpSettings {
            auth_token: app.auth_token,
            max_body_bytes: app.max_body_bytes,
            browser: app.browser,
            metrics_public: app.metrics_public,
        },
    );
    // On shutdown, running runs get the grace period to finish, then are interrupted and
    // commit what they have; open event streams end with them. `serve` returns only once
    // the runs' events are on the bus (bounded), so a stream ends with its terminal event.
    let shutdown = async move {
        shutdown.await;
        // A sweep finishes the deletion under way, so none is cut between rows and files.
        sweeps.cancel();
        if let Some(sweeper) = sweeper
            && let Err(e) = sweeper.await
        {
            tracing::warn!(error = %e, "retention sweep ended abnormally");
        }
        runs.shutdown(grace).await;
    };
    let limits = EdgeLimits {
        max_connections: app.edge.max_connections,
        header_read_timeout: app.edge.header_read_timeout,
        body_read_timeout: app.edge.body_read_timeout,
        idle_timeout: app.edge.idle_timeout,
    };
    api::edge::serve(
        endpoint.map_to_response().boxed(),
        listener,
        limits,
        shutdown,
    )
    .await
}

async fn connect_storage(database: &DatabaseConfig) -> anyhow::Result<SqlStorage> {
    let target = match database {
        DatabaseConfig::Sqlite { path } => SqlTarget::Sqlite { path: path.clone() },
        DatabaseConfig::Postgres { url } => SqlTarget::Postgres {
            url: url.expose().to_owned(),
        },
    };
    SqlStorage::connect(&target, &SqlSettings::default())
        .await
        .context("DATABASE_URL")
}

fn state_store(config: &StateStoreConfig) -> anyhow::Result<Arc<dyn StateStore>> {
    let store = match config {
        StateStoreConfig::Local { root } => {
            OpendalStateStore::local(root).context("STATE_STORE_PATH")?
        }
        StateStoreConfig::S3 {
            endpoint,
            bucket,
            access_key,
            secret_key,
            region,
        } => OpendalStateStore::s3(S3Settings {
            endpoint: endpoint.clone(),
            bucket: bucket.clone(),
            access_key: access_key.as_ref().map(|s| s.expose().to_owned()),
            secret_key: secret_key.as_ref().map(|s| s.expose().to_owned()),
            region: region.clone(),
        })
        .context("S3_*")?,
    };
    Ok(Arc::new(store))
}

/// The model provider for every run: one router over the test models, OpenAI, Anthropic and
/// the configured gateways, with credentials from the environment.
/// Where agents' environments open: the workspace root, the protected paths and the
/// sandbox settings the boundary prepared.
fn host_environments(boundary: &boundary::Boundary) -> Arc<HostEnvironments> {
    Arc::new(
        HostEnvironments::new()
            .with_workspace_root(boundary.workspace_root.clone())
            .with_protected(boundary.protected.clone())
            .with_sandbox(boundary.sandbox.clone()),
    )
}

/// The search service of the web toolset: Tavily when its key is set, else Google
/// Programmable Search when its key and engine id are, else none (`search` not offered).
fn web_search(web: &WebServicesConfig) -> anyhow::Result<Option<Arc<dyn WebSearch>>> {
    let context = "building the HTTP client for web search";
    if let Some(key) = &web.tavily.api_key {
        let tavily = Tavily::new(key.expose().to_owned(), web.tavily.base_url.as_deref());
        return Ok(Some(Arc::new(tavily.context(context)?)));
    }
    match (&web.google.api_key, &web.google_cx) {
        (Some(key), Some(cx)) => {
            let google = GoogleSearch::new(
                key.expose().to_owned(),
                cx.clone(),
                web.google.base_url.as_deref(),
            );
            Ok(Some(Arc::new(google.context(context)?)))
        }
        _ => Ok(None),
    }
}

/// The scraping service of the web toolset: Firecrawl when its key is set.
fn scraper(web: &WebServicesConfig) -> anyhow::Result<Option<Arc<dyn Scraper>>> {
    let Some(key) = &web.firecrawl.api_key else {
        return Ok(None);
    };
    let firecrawl = Firecrawl::new(key.expose().to_owned(), web.firecrawl.base_url.as_deref())
        .context("building the HTTP client for web scraping")?;
    Ok(Some(Arc::new(firecrawl)))
}

pub fn model_provider(config: &Config) -> anyhow::Result<Arc<dyn ModelProvider>> {
    let endpoint = |c: &ProviderCredentials| Endpoint {
        api_key: c.api_key.as_ref().map(|k| k.expose().to_owned()),
        base_url: c.base_url.clone(),
    };
    let settings = LlmSettings {
        openai: endpoint(&config.openai),
        anthropic: endpoint(&config.anthropic),
        gateways: config
            .gateways
            .iter()
            .map(|(name, c)| (name.clone(), endpoint(c)))
            .collect(),
        idle_timeout: config.model_idle_timeout,
    };
    let router =
        ModelRouter::new(settings).context("building the HTTP client for model providers")?;
    Ok(Arc::new(CircuitBreakers::new(
        Arc::new(router),
        BreakerSettings {
            failures: config.model_breaker_failures,
            cool_down: config.model_breaker_cool_down,
        },
    )))
}
