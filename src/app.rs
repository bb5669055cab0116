//! Wiring: the one place that names concrete adapters. `build` turns a config into a
//! ready application (migrated, recovered, seeded); `serve` runs it on a listener the
//! caller bound. `main.rs` and the tests call both.

use std::{future::Future, sync::Arc, time::Duration};

use adapters::{
    event_bus::{BusSettings, InProcessBus, RedisBus},
    llm::{Endpoint, LlmSettings, ModelRouter},
    shell::{DockerShell, LocalShell},
    sql::{SqlSettings, SqlStorage, SqlTarget},
    state_store::{OpendalStateStore, S3Settings},
    workspace::LocalWorkspace,
};
use anyhow::Context;
use poem::{EndpointExt, Server, listener::TcpAcceptor};
use ports::{EnvironmentSpec, EventBus, ModelProvider, Shell, ShellMode, StateStore};

use crate::{
    api::{self, ApiState, HttpSettings},
    config::{Config, DatabaseConfig, ProviderCredentials, StateStoreConfig},
    core::{
        environment::{Environment, ShellLimits, shell_env},
        health::HealthCheck,
        presets::{AvailableProviders, PresetService},
        recovery::fail_orphaned_sessions,
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
    let storage = Arc::new(connect_storage(&config.database).await?);
    storage
        .migrate()
        .await
        .context("DATABASE_URL: applying migrations failed")?;
    fail_orphaned_sessions(&*storage)
        .await
        .context("startup recovery failed")?;

    let event_bus: Arc<dyn EventBus> = match &config.redis_url {
        Some(url) => {
            Arc::new(RedisBus::new(url.expose(), BusSettings::default()).context("REDIS_URL")?)
        }
        None => Arc::new(InProcessBus::new(BusSettings::default())),
    };
    let state_store = state_store(&config.state_store)?;

    let presets = PresetService::new(storage.clone());
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

    let (auth_token, auth_token_generated) = match &config.auth_token {
        Some(token) => (token.expose().to_owned(), false),
        None => (generate_token(), true),
    };
    let health = HealthCheck::new(
        storage.clone(),
        event_bus,
        state_store,
        Duration::from_secs(2),
    );
    Ok(App {
        state: Arc::new(ApiState { presets, health }),
        auth_token,
        auth_token_generated,
        max_body_bytes: config.max_body_bytes,
        shutdown_grace: config.shutdown_grace,
    })
}

/// Applies migrations only (`agent-runtime migrate`); returns how many ran.
pub async fn migrate(config: &Config) -> anyhow::Result<usize> {
    let storage = connect_storage(&config.database).await?;
    storage
        .migrate()
        .await
        .context("DATABASE_URL: applying migrations failed")
}

/// Serves until `shutdown` resolves, then lets open requests finish within the grace period.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let endpoint = api::endpoint(
        app.state,
        HttpSettings {
            auth_token: app.auth_token,
            max_body_bytes: app.max_body_bytes,
        },
    );
    Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?)
        .run_with_graceful_shutdown(endpoint.boxed(), shutdown, Some(app.shutdown_grace))
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

/// 244 random bits as 64 hex characters.
fn generate_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The model provider for every run: one router over the test models, OpenAI, Anthropic and
/// the configured gateways, with credentials from the environment.
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
        ..LlmSettings::default()
    };
    Ok(Arc::new(
        ModelRouter::new(settings).context("building the HTTP client for model providers")?,
    ))
}

/// The environment of one run as a preset describes it: the workspace under the path
/// policy, and a local or docker shell. Commands see PATH, HOME, LANG and the preset's
/// allowed variables from the service's environment, never a credential.
///
/// # Errors
/// The working directory does not exist, or docker mode lacks a container id.
pub fn environment(spec: &EnvironmentSpec) -> anyhow::Result<Environment> {
    let container_workdir = match spec.shell_mode {
        ShellMode::Local => None,
        ShellMode::Docker => Some(
            spec.container_workdir
                .clone()
                .unwrap_or_else(|| "/workspace".to_owned()),
        ),
    };
    let allowed: Vec<std::path::PathBuf> = spec.allowed_paths.iter().map(Into::into).collect();
    let workspace = LocalWorkspace::new(
        std::path::Path::new(&spec.default_path),
        &allowed,
        container_workdir,
    )
    .with_context(|| format!("default_path {}", spec.default_path))?;
    let shell: Arc<dyn Shell> = match spec.shell_mode {
        ShellMode::Local => Arc::new(LocalShell::new()),
        ShellMode::Docker => {
            let id = spec
                .container_id
                .as_deref()
                .context("docker mode needs a container_id")?;
            Arc::new(DockerShell::new(id))
        }
    };
    Ok(Environment {
        workspace: Arc::new(workspace),
        shell,
        shell_env: shell_env(spec, |name| std::env::var(name).ok()),
        limits: ShellLimits::default(),
    })
}
