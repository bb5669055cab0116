//! Environment → typed configuration (spec 02). Everything is parsed and cross-checked once
//! at start; every error names its variable, so a bad value stops the process with one
//! clear line.

pub mod file;
pub mod variables;

use adapters::outbound::{AllowList, OutboundPolicy};
use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    path::PathBuf,
    time::Duration,
};

use adapters::shell::sandbox::Rlimits;

/// A value that must never reach a log line: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A configuration error: `"{var}: {reason}"`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

fn bad(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        reason: reason.into(),
    }
}

/// Where durable metadata lives.
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseConfig {
    Sqlite { path: String },
    Postgres { url: Secret },
}

/// Where session snapshots live.
#[derive(Debug, Clone, PartialEq)]
pub enum StateStoreConfig {
    Local {
        root: PathBuf,
    },
    S3 {
        endpoint: Option<String>,
        bucket: String,
        access_key: Option<Secret>,
        secret_key: Option<Secret>,
        region: Option<String>,
    },
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Credentials and endpoint of one model provider or gateway.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProviderCredentials {
    pub api_key: Option<Secret>,
    pub base_url: Option<String>,
}

/// How local shell commands are confined (spec 02, security boundary).
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// `SANDBOX_READ_PATHS`: read-only paths besides the system directories.
    pub read_paths: Vec<PathBuf>,
    /// `SANDBOX_REQUIRED`: refuse shell commands where Landlock is missing.
    pub required: bool,
    /// `SHELL_RLIMITS`.
    pub rlimits: Rlimits,
    /// `SANDBOX_HELPER`: the agent-runtime binary that runs the helper (default: this one).
    pub helper: Option<PathBuf>,
}

/// Shortest `AUTH_TOKEN` accepted: a guessable token is no boundary.
pub const MIN_TOKEN_LEN: usize = 16;

/// The whole service configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub database: DatabaseConfig,
    /// `None`: the in-process event bus.
    pub redis_url: Option<Secret>,
    /// `REDIS_CA_FILE`: PEM certificates to trust for a `rediss://` server instead of the
    /// system's roots.
    pub redis_ca_file: Option<PathBuf>,
    pub state_store: StateStoreConfig,
    /// `None`: generate one at start and log it at WARN.
    pub auth_token: Option<Secret>,
    pub host: IpAddr,
    pub port: u16,
    pub shutdown_grace: Duration,
    pub max_body_bytes: usize,
    /// How long a run's event stream stays attachable after its terminal event.
    pub stream_ttl: Duration,
    /// Longest silence tolerated from a model provider before the response counts as
    /// broken (retried when nothing was streamed yet).
    pub model_idle_timeout: Duration,
    /// `MODEL_MAX_RETRIES`: retries of a model request after a 429, a 5xx or a connection
    /// error, before the run fails (0: none).
    pub model_max_retries: u32,
    /// `MODEL_BREAKER_FAILURES`: outages in a row that open a provider endpoint's circuit
    /// breaker (its runs then go straight to their fallback models).
    pub model_breaker_failures: u32,
    /// `MODEL_BREAKER_COOLDOWN_SECS`: how long an open breaker skips its endpoint.
    pub model_breaker_cool_down: Duration,
    pub log_format: LogFormat,
    pub openai: ProviderCredentials,
    pub anthropic: ProviderCredentials,
    /// Named gateways (`NAME_API_KEY` / `NAME_BASE_URL`), by lower-case name.
    pub gateways: BTreeMap<String, ProviderCredentials>,
    /// The web toolset's search and scrape services.
    pub web: WebServicesConfig,
    /// Runs going at once, async subagents included (`MAX_CONCURRENT_RUNS`); more are
    /// refused with 429 `too_many_runs`.
    pub max_concurrent_runs: usize,
    /// The largest file the file tools read whole or write (`MAX_FILE_BYTES`).
    pub max_file_bytes: u64,
    /// `TITLE_MODEL`: a cheap model that titles new conversations from their first
    /// exchange; without it a title is the first user text, cut.
    pub title_model: Option<String>,
    /// `RETENTION_DAYS` and `RETENTION_SWEEP_SECS`: when set, archived conversations
    /// untouched that long are deleted; `None` keeps them until deleted.
    pub retention: Option<crate::core::execution::RetentionPolicy>,
    /// `WORKSPACE_ROOT`: where agents work; relative preset paths start here.
    pub workspace_root: PathBuf,
    /// `PROTECTED_PATHS`: more paths no agent may reach (the service's own files always are).
    pub protected_paths: Vec<PathBuf>,
    pub sandbox: SandboxConfig,
    /// Limits of the HTTP edge (connections, timeouts).
    pub edge: EdgeConfig,
    /// Cross-origin pages and the session cookie.
    pub browser: BrowserConfig,
    /// `METRICS_PUBLIC`: `/metrics` is served without the token (for a scraper on a
    /// trusted network).
    pub metrics_public: bool,
    /// `WEBHOOKS`: where notifications are POSTed.
    pub webhooks: Vec<adapters::webhooks::WebhookConfig>,
    /// What URLs chosen by callers or models may reach (`FETCH_ALLOW_PRIVATE`,
    /// `FETCH_ALLOW_HOSTS`).
    pub fetch: OutboundPolicy,
}

/// The services behind the web toolset's `search` and `scrape`: each is offered only when
/// its key is set (`TAVILY_*`, `GOOGLE_SEARCH_*` with `GOOGLE_SEARCH_CX`, `FIRECRAWL_*`);
/// the base URLs point them at a self-hosted or test server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebServicesConfig {
    pub tavily: ProviderCredentials,
    pub google: ProviderCredentials,
    /// The Programmable Search engine id; set exactly when the Google key is.
    pub google_cx: Option<String>,
    pub firecrawl: ProviderCredentials,
}

/// What browsers may do (spec 06, browsers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserConfig {
    /// `CORS_ORIGINS`: origins (`scheme://host[:port]`) whose pages may call the API from
    /// another origin, with credentials. Empty: none.
    pub cors_origins: Vec<String>,
    /// `COOKIE_SECURE`: the session cookie is sent over HTTPS only.
    pub cookie_secure: bool,
}

/// Limits of the HTTP edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Connections served at once; more wait in the accept queue.
    pub max_connections: usize,
    /// Time for a request's headers to arrive.
    pub header_read_timeout: Duration,
    /// Time for a request's body to arrive, once its headers did.
    pub body_read_timeout: Duration,
    /// How long a connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl Config {
    /// Every secret value this configuration holds: API keys, `AUTH_TOKEN`, S3 keys and the
    /// passwords inside `DATABASE_URL` and `REDIS_URL` (scrubbed from tool output).
    pub fn secret_values(&self) -> Vec<String> {
        let mut secrets: Vec<&Secret> = Vec::new();
        secrets.extend(self.auth_token.iter());
        for p in [&self.openai, &self.anthropic]
            .into_iter()
            .chain(self.gateways.values())
        {
            secrets.extend(p.api_key.iter());
        }
        for service in [&self.web.tavily, &self.web.google, &self.web.firecrawl] {
            secrets.extend(service.api_key.iter());
        }
        if let StateStoreConfig::S3 {
            access_key,
            secret_key,
            ..
        } = &self.state_store
        {
            secrets.extend(access_key.iter().chain(secret_key.iter()));
        }
        let mut values: Vec<String> = secrets.iter().map(|s| s.expose().to_owned()).collect();
        // A webhook's signing key, and its URL (a Gotify URL carries its token).
        for hook in &self.webhooks {
            values.extend(hook.secret.iter().cloned());
            values.push(hook.url.clone());
        }
        if let DatabaseConfig::Postgres { url } = &self.database {
            values.extend(url_password(url.expose()));
        }
        if let Some(url) = &self.redis_url {
            values.extend(url_password(url.expose()));
        }
        values
    }
}

/// The password of `scheme://user:password@host…`, if any.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_owned())
}

/// Variables ending in `_API_KEY` / `_BASE_URL` that are not gateways.
const NOT_GATEWAYS: &[&str] = &[
    "OPENAI",
    "ANTHROPIC",
    "TAVILY",
    "FIRECRAWL",
    "GOOGLE_SEARCH",
    "S3",
];

impl Config {
    /// Parses a set of variables (the process environment merged over `.env`).
    /// Empty values count as unset.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let get = |name: &str| {
            #[cfg(test)]
            tests::READ.with(|read| read.borrow_mut().insert(name.to_owned()));
            vars.get(name).map(|v| v.trim().to_owned())
        };

        Ok(Self {
            database: parse_database(get("DATABASE_URL"))?,
            redis_url: parse_redis_url(get("REDIS_URL"))?,
            redis_ca_file: parse_redis_ca(get("REDIS_CA_FILE"), get("REDIS_URL").as_deref())?,
            state_store: parse_state_store(&get)?,
            auth_token: parse_auth_token(get("AUTH_TOKEN"))?,
            host: parse_host(get("HOST"))?,
            port: parse_num::<u16>("PORT", get("PORT"), 8000)?,
            shutdown_grace: Duration::from_secs(parse_num(
                "SHUTDOWN_GRACE_SECS",
                get("SHUTDOWN_GRACE_SECS"),
                5,
            )?),
            max_body_bytes: positive(&get, "MAX_BODY_BYTES", 10 * 1024 * 1024)?,
            stream_ttl: Duration::from_secs(positive(&get, "STREAM_TTL_SECS", 300)?),
            model_idle_timeout: Duration::from_secs(positive(
                &get,
                "MODEL_IDLE_TIMEOUT_SECS",
                120,
            )?),
            model_max_retries: parse_num("MODEL_MAX_RETRIES", get("MODEL_MAX_RETRIES"), 3)?,
            model_breaker_failures: positive(&get, "MODEL_BREAKER_FAILURES", 5)?,
            model_breaker_cool_down: Duration::from_secs(positive(
                &get,
                "MODEL_BREAKER_COOLDOWN_SECS",
                30,
            )?),
            log_format: parse_log_format(get("LOG_FORMAT"))?,
            openai: provider(&get, "OPENAI")?,
            anthropic: provider(&get, "ANTHROPIC")?,
            gateways: gateways(&vars, &get)?,
            web: parse_web_services(&get)?,
            workspace_root: PathBuf::from(
                get("WORKSPACE_ROOT").unwrap_or_else(|| "./workspace".to_owned()),
            ),
            protected_paths: path_list(get("PROTECTED_PATHS")),
            sandbox: parse_sandbox(&get)?,
            edge: parse_edge(&get)?,
            browser: BrowserConfig {
                cors_origins: parse_origins(get("CORS_ORIGINS"))?,
                cookie_secure: parse_bool_var("COOKIE_SECURE", get("COOKIE_SECURE"), false)?,
            },
            fetch: parse_fetch(&get)?,
            metrics_public: parse_bool_var("METRICS_PUBLIC", get("METRICS_PUBLIC"), false)?,
            webhooks: parse_webhooks(get("WEBHOOKS"))?,
            max_concurrent_runs: positive(
                &get,
                "MAX_CONCURRENT_RUNS",
                crate::core::execution::DEFAULT_MAX_CONCURRENT_RUNS,
            )?,
            max_file_bytes: positive(
                &get,
                "MAX_FILE_BYTES",
                crate::core::limits::DEFAULT_MAX_FILE_BYTES,
            )?,
            title_model: parse_title_model(get("TITLE_MODEL"))?,
            retention: parse_retention(&get)?,
        })
    }
}

fn parse_redis_url(url: Option<String>) -> Result<Option<Secret>, ConfigError> {
    url.map(|url| {
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(Secret::new(url))
        } else {
            Err(bad(
                "REDIS_URL",
                "expected redis://host:port[/db] (or rediss:// for TLS)",
            ))
        }
    })
    .transpose()
}

fn parse_redis_ca(file: Option<String>, url: Option<&str>) -> Result<Option<PathBuf>, ConfigError> {
    match file {
        Some(_) if !url.is_some_and(|u| u.starts_with("rediss://")) => {
            Err(bad("REDIS_CA_FILE", "only used with a rediss:// REDIS_URL"))
        }
        file => Ok(file.map(PathBuf::from)),
    }
}

/// `WEBHOOKS`: a JSON list of `{url, events?, secret?, format?}`.
fn parse_webhooks(
    value: Option<String>,
) -> Result<Vec<adapters::webhooks::WebhookConfig>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let hooks: Vec<adapters::webhooks::WebhookConfig> = serde_json::from_str(&value).map_err(|e| {
        bad(
            "WEBHOOKS",
            format!("expected a JSON list of {{url, events?, secret?, format?: json|ntfy|gotify}}: {e}"),
        )
    })?;
    for (i, hook) in hooks.iter().enumerate() {
        http_url(&format!("WEBHOOKS[{i}].url"), hook.url.clone())?;
    }
    Ok(hooks)
}

fn parse_host(host: Option<String>) -> Result<IpAddr, ConfigError> {
    match host {
        // Loopback unless told otherwise: exposing the service is a decision.
        None => Ok(IpAddr::from([127, 0, 0, 1])),
        Some(h) => h
            .parse()
            .map_err(|_| bad("HOST", format!("not an IP address: {h}"))),
    }
}

fn parse_log_format(format: Option<String>) -> Result<LogFormat, ConfigError> {
    match format.as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(bad(
            "LOG_FORMAT",
            format!("expected text or json, got {other}"),
        )),
    }
}

fn parse_auth_token(token: Option<String>) -> Result<Option<Secret>, ConfigError> {
    let token = token.map(Secret::new);
    if token
        .as_ref()
        .is_some_and(|t| t.expose().chars().count() < MIN_TOKEN_LEN)
    {
        return Err(bad(
            "AUTH_TOKEN",
            format!("must be at least {MIN_TOKEN_LEN} characters (or unset, to generate one)"),
        ));
    }
    Ok(token)
}

fn parse_sandbox(get: &impl Fn(&str) -> Option<String>) -> Result<SandboxConfig, ConfigError> {
    Ok(SandboxConfig {
        read_paths: path_list(get("SANDBOX_READ_PATHS")),
        required: parse_bool_var("SANDBOX_REQUIRED", get("SANDBOX_REQUIRED"), false)?,
        rlimits: match get("SHELL_RLIMITS") {
            None => Rlimits::default(),
            Some(spec) => Rlimits::parse(&spec).map_err(|e| bad("SHELL_RLIMITS", e))?,
        },
        helper: get("SANDBOX_HELPER").map(PathBuf::from),
    })
}

fn parse_edge(get: &impl Fn(&str) -> Option<String>) -> Result<EdgeConfig, ConfigError> {
    let secs = |var: &str, default: u64| positive(get, var, default).map(Duration::from_secs);
    Ok(EdgeConfig {
        max_connections: positive(get, "MAX_CONNECTIONS", 4096)?,
        header_read_timeout: secs("HEADER_READ_TIMEOUT_SECS", 10)?,
        body_read_timeout: secs("BODY_READ_TIMEOUT_SECS", 60)?,
        idle_timeout: secs("IDLE_TIMEOUT_SECS", 60)?,
    })
}

fn parse_fetch(get: &impl Fn(&str) -> Option<String>) -> Result<OutboundPolicy, ConfigError> {
    Ok(OutboundPolicy {
        allow_private: parse_bool_var("FETCH_ALLOW_PRIVATE", get("FETCH_ALLOW_PRIVATE"), false)?,
        allow: AllowList::parse(&get("FETCH_ALLOW_HOSTS").unwrap_or_default())
            .map_err(|why| bad("FETCH_ALLOW_HOSTS", why))?,
    })
}

/// A number that must be greater than 0.
fn positive<T>(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialEq + From<u8>,
{
    let n = parse_num::<T>(var, get(var), default)?;
    if n == T::from(0) {
        return Err(bad(var, "must be greater than 0"));
    }
    Ok(n)
}

fn parse_database(url: Option<String>) -> Result<DatabaseConfig, ConfigError> {
    let url = url.unwrap_or_else(|| "sqlite://./data/runtime.db".to_owned());
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad(
                "DATABASE_URL",
                "postgres URL needs a host: postgres://user@host:port/db",
            ));
        }
        adapters::sql::PgTls::parse(&url).map_err(|why| bad("DATABASE_URL", why))?;
        return Ok(DatabaseConfig::Postgres {
            url: Secret::new(url),
        });
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| bad("DATABASE_URL", "expected sqlite://path or postgres://…"))?;
    if path.is_empty() {
        return Err(bad("DATABASE_URL", "sqlite URL needs a file path"));
    }
    Ok(DatabaseConfig::Sqlite {
        path: path.to_owned(),
    })
}

fn parse_state_store(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<StateStoreConfig, ConfigError> {
    match get("STATE_STORE").as_deref() {
        None | Some("local") => Ok(StateStoreConfig::Local {
            root: PathBuf::from(get("STATE_STORE_PATH").unwrap_or_else(|| "./data".to_owned())),
        }),
        Some("s3") => {
            let bucket =
                get("S3_BUCKET").ok_or_else(|| bad("S3_BUCKET", "required when STATE_STORE=s3"))?;
            let endpoint = get("S3_ENDPOINT")
                .map(|e| http_url("S3_ENDPOINT", e))
                .transpose()?;
            Ok(StateStoreConfig::S3 {
                endpoint,
                bucket,
                access_key: get("S3_ACCESS_KEY").map(Secret::new),
                secret_key: get("S3_SECRET_KEY").map(Secret::new),
                region: get("S3_REGION"),
            })
        }
        Some(other) => Err(bad(
            "STATE_STORE",
            format!("expected local or s3, got {other}"),
        )),
    }
}

fn parse_num<T: std::str::FromStr>(
    var: &str,
    value: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| bad(var, format!("not a valid number: {v}"))),
    }
}

/// A comma-separated list of paths; empty items are skipped.
fn path_list(value: Option<String>) -> Vec<PathBuf> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// A comma-separated list of origins, each `http(s)://host[:port]` exactly as a browser
/// sends it in `Origin` (no path, no trailing slash); compared lower-case. `*` is refused:
/// a wildcard cannot carry credentials, and the API needs them.
fn parse_origins(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let mut origins = Vec::new();
    for item in value.unwrap_or_default().split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let origin = item.to_ascii_lowercase();
        let host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        match host {
            Some(host) if !host.is_empty() && !host.contains('/') => origins.push(origin),
            _ => {
                return Err(bad(
                    "CORS_ORIGINS",
                    format!("expected origins like https://host[:port], got {item}"),
                ));
            }
        }
    }
    Ok(origins)
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, any case).
fn parse_bool_var(var: &str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match value.map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(bad(var, format!("expected true or false, got {other}"))),
    }
}

fn http_url(var: &str, url: String) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| bad(var, format!("expected an http(s) URL, got {url}")))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad(var, format!("URL has no host: {url}")));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn provider(
    get: &impl Fn(&str) -> Option<String>,
    prefix: &str,
) -> Result<ProviderCredentials, ConfigError> {
    let url_var = format!("{prefix}_BASE_URL");
    Ok(ProviderCredentials {
        api_key: get(&format!("{prefix}_API_KEY")).map(Secret::new),
        base_url: get(&url_var).map(|u| http_url(&url_var, u)).transpose()?,
    })
}

fn parse_web_services(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<WebServicesConfig, ConfigError> {
    let google = provider(get, "GOOGLE_SEARCH")?;
    let google_cx = get("GOOGLE_SEARCH_CX");
    if google.api_key.is_some() != google_cx.is_some() {
        let missing = if google_cx.is_none() {
            "GOOGLE_SEARCH_CX"
        } else {
            "GOOGLE_SEARCH_API_KEY"
        };
        return Err(bad(
            missing,
            "Google search needs both GOOGLE_SEARCH_API_KEY and GOOGLE_SEARCH_CX",
        ));
    }
    Ok(WebServicesConfig {
        tavily: provider(get, "TAVILY")?,
        google,
        google_cx,
        firecrawl: provider(get, "FIRECRAWL")?,
    })
}

fn gateways(
    vars: &HashMap<String, String>,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, ProviderCredentials>, ConfigError> {
    let mut found = BTreeMap::new();
    for name in vars.keys() {
        let Some(prefix) = name
            .strip_suffix("_API_KEY")
            .or_else(|| name.strip_suffix("_BASE_URL"))
        else {
            continue;
        };
        if prefix.is_empty()
            || NOT_GATEWAYS.contains(&prefix)
            || found.contains_key(&prefix.to_lowercase())
        {
            continue;
        }
        found.insert(prefix.to_lowercase(), provider(get, prefix)?);
    }
    Ok(found)
}

/// Longest `RETENTION_DAYS`: a century, so the cutoff never leaves the calendar.
const MAX_RETENTION_DAYS: f64 = 36_500.0;

/// `RETENTION_DAYS` (days, decimals allowed; unset: off) and `RETENTION_SWEEP_SECS`.
fn parse_retention(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<crate::core::execution::RetentionPolicy>, ConfigError> {
    let every = Duration::from_secs(positive(get, "RETENTION_SWEEP_SECS", 3600)?);
    let Some(days) = get("RETENTION_DAYS") else {
        return Ok(None);
    };
    let days: f64 = days
        .trim()
        .parse()
        .map_err(|_| bad("RETENTION_DAYS", "must be a number of days, e.g. 30"))?;
    if !(days > 0.0 && days <= MAX_RETENTION_DAYS) {
        return Err(bad(
            "RETENTION_DAYS",
            format!("must be more than 0 and at most {MAX_RETENTION_DAYS} days"),
        ));
    }
    Ok(Some(crate::core::execution::RetentionPolicy {
        keep_archived: Duration::from_secs_f64(days * 86_400.0),
        every,
    }))
}

/// `TITLE_MODEL`, named like a preset's model (`provider:model`, `gateway@provider:model`).
fn parse_title_model(value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(model) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match crate::core::preset_validation::model_name_problem(&model) {
        Some(problem) => Err(bad("TITLE_MODEL", problem)),
        None => Ok(Some(model)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// The variables `from_vars` read on this thread.
        pub(super) static READ: std::cell::RefCell<std::collections::BTreeSet<String>> =
            std::cell::RefCell::default();
    }

    /// The command line offers exactly the variables the parser reads: a setting added to
    /// one and not the other fails here.
    #[test]
    fn the_variables_table_names_every_setting_read() {
        READ.with(|read| read.borrow_mut().clear());
        parse(&[]).unwrap();
        parse(&[
            ("STATE_STORE", "s3"),
            ("S3_BUCKET", "b"),
            ("REDIS_URL", "rediss://r:6380"),
            ("REDIS_CA_FILE", "/ca.pem"),
        ])
        .unwrap();
        let read = READ.with(|read| read.borrow().clone());
        let offered: std::collections::BTreeSet<String> = variables::VARIABLES
            .iter()
            .map(|v| v.name.to_owned())
            .collect();
        assert_eq!(read, offered);
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_need_nothing() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            c.database,
            DatabaseConfig::Sqlite {
                path: "./data/runtime.db".into()
            }
        );
        assert_eq!(c.redis_url, None);
        assert_eq!(
            c.state_store,
            StateStoreConfig::Local {
                root: "./data".into()
            }
        );
        assert_eq!(c.auth_token, None);
        assert_eq!(c.host.to_string(), "127.0.0.1", "not exposed by default");
        assert_eq!(c.port, 8000);
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
        assert_eq!(c.max_body_bytes, 10_485_760);
        assert_eq!(c.browser, BrowserConfig::default());
        assert_eq!(c.stream_ttl, Duration::from_secs(300));
        assert_eq!(c.model_idle_timeout, Duration::from_secs(120));
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.gateways.is_empty());
        assert_eq!(c.workspace_root, PathBuf::from("./workspace"));
        assert!(c.protected_paths.is_empty());
        assert_eq!(c.sandbox.rlimits, Rlimits::default());
        assert!(!c.sandbox.required);
        assert_eq!(c.fetch, OutboundPolicy::default());
        assert_eq!(c.max_concurrent_runs, 1024);
        assert_eq!(c.model_max_retries, 3);
        assert_eq!(c.redis_ca_file, None);
        assert_eq!(
            c.edge,
            EdgeConfig {
                max_connections: 4096,
                header_read_timeout: Duration::from_secs(10),
                body_read_timeout: Duration::from_secs(60),
                idle_timeout: Duration::from_secs(60),
            }
        );
    }

    #[test]
    fn tls_settings_are_checked_at_start() {
        let c = parse(&[
            (
                "DATABASE_URL",
                "postgres://u@db:5432/x?sslmode=verify-full&sslrootcert=/ca.pem",
            ),
            ("REDIS_URL", "rediss://cache:6380"),
            ("REDIS_CA_FILE", "/ca.pem"),
        ])
        .unwrap();
        assert_eq!(c.redis_ca_file, Some(PathBuf::from("/ca.pem")));
        let e = parse(&[("DATABASE_URL", "postgres://u@db/x?sslmode=verify-ca")]).unwrap_err();
        assert_eq!(e.var, "DATABASE_URL");
        assert!(e.reason.contains("verify-full"), "{e}");
        let e = parse(&[
            ("REDIS_URL", "redis://cache:6379"),
            ("REDIS_CA_FILE", "/ca.pem"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "REDIS_CA_FILE");
        let e = parse(&[("MAX_CONCURRENT_RUNS", "0")]).unwrap_err();
        assert_eq!(e.var, "MAX_CONCURRENT_RUNS");
    }

    #[test]
    fn webhooks_are_a_json_list_with_http_urls() {
        let c = parse(&[(
            "WEBHOOKS",
            r#"[{"url": "https://ntfy.sh/runs", "format": "ntfy", "events": ["session_finished"]}, {"url": "http://127.0.0.1:9/h", "secret": "signing-key-0123456789"}]"#,
        )])
        .unwrap();
        assert_eq!(c.webhooks.len(), 2);
        assert!(
            c.secret_values()
                .contains(&"signing-key-0123456789".to_owned())
        );
        for bad in [
            r#"{"url": "http://x"}"#,
            r#"[{"url": "ftp://x"}]"#,
            r#"[{"url": "http://x", "events": ["nope"]}]"#,
            r#"[{"url": "http://x", "format": "slack"}]"#,
        ] {
            let e = parse(&[("WEBHOOKS", bad)]).unwrap_err();
            assert!(e.var.starts_with("WEBHOOKS"), "{bad}: {e}");
        }
    }

    #[test]
    fn host_and_edge_limits_are_read() {
        let c = parse(&[
            ("HOST", "0.0.0.0"),
            ("MAX_CONNECTIONS", "8"),
            ("HEADER_READ_TIMEOUT_SECS", "1"),
            ("BODY_READ_TIMEOUT_SECS", "2"),
            ("IDLE_TIMEOUT_SECS", "3"),
        ])
        .unwrap();
        assert_eq!(c.host.to_string(), "0.0.0.0");
        assert_eq!(
            c.edge,
            EdgeConfig {
                max_connections: 8,
                header_read_timeout: Duration::from_secs(1),
                body_read_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_secs(3),
            }
        );
    }

    #[test]
    fn fetch_policy_reads_its_two_variables() {
        let c = parse(&[
            ("FETCH_ALLOW_PRIVATE", "true"),
            ("FETCH_ALLOW_HOSTS", "127.0.0.1:8080, nas.lan,10.0.0.0/8"),
        ])
        .unwrap();
        assert!(c.fetch.allow_private);
        assert_eq!(
            c.fetch.allow,
            AllowList::parse("127.0.0.1:8080,nas.lan,10.0.0.0/8").unwrap()
        );
        assert!(
            c.fetch
                .check_addr("127.0.0.1:8080".parse().unwrap())
                .is_ok()
        );
        assert!(
            c.fetch
                .check_addr("127.0.0.1:8081".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn every_variable_is_read() {
        let c = parse(&[
            ("DATABASE_URL", "postgres://u@db:5432/x"),
            ("REDIS_URL", "redis://127.0.0.1:6379/2"),
            ("STATE_STORE", "s3"),
            ("S3_ENDPOINT", "http://127.0.0.1:9000/"),
            ("S3_BUCKET", "b"),
            ("S3_ACCESS_KEY", "ak"),
            ("S3_SECRET_KEY", "sk"),
            ("S3_REGION", "eu"),
            ("AUTH_TOKEN", "tok-0123456789abcdef"),
            ("HOST", "127.0.0.1"),
            ("PORT", "9001"),
            ("SHUTDOWN_GRACE_SECS", "2"),
            ("MAX_BODY_BYTES", "1024"),
            ("CORS_ORIGINS", "https://Chat.lan, http://127.0.0.1:5173,"),
            ("COOKIE_SECURE", "true"),
            ("STREAM_TTL_SECS", "7"),
            ("MODEL_IDLE_TIMEOUT_SECS", "3"),
            ("LOG_FORMAT", "json"),
            ("OPENAI_API_KEY", "o"),
            ("OPENAI_BASE_URL", "http://localhost:8080/v1"),
            ("ANTHROPIC_API_KEY", "a"),
            ("ANTHROPIC_BASE_URL", "https://api.example"),
            ("MYGW_API_KEY", "g"),
            ("MYGW_BASE_URL", "http://gw:4000"),
            ("WORKSPACE_ROOT", "/srv/agents"),
            ("PROTECTED_PATHS", "/etc/secret, ,/srv/keys"),
            ("SANDBOX_READ_PATHS", "/srv/tools"),
            ("SANDBOX_REQUIRED", "true"),
            ("SHELL_RLIMITS", "nofile=64"),
            ("SANDBOX_HELPER", "/usr/local/bin/agent-runtime"),
        ])
        .unwrap();
        assert_eq!(c.workspace_root, PathBuf::from("/srv/agents"));
        assert_eq!(
            c.protected_paths,
            vec![PathBuf::from("/etc/secret"), PathBuf::from("/srv/keys")]
        );
        assert_eq!(c.sandbox.read_paths, vec![PathBuf::from("/srv/tools")]);
        assert!(c.sandbox.required);
        assert_eq!(c.sandbox.rlimits.open_files, 64);
        assert_eq!(
            c.sandbox.helper,
            Some(PathBuf::from("/usr/local/bin/agent-runtime"))
        );
        assert!(
            matches!(c.database, DatabaseConfig::Postgres { ref url } if url.expose() == "postgres://u@db:5432/x")
        );
        assert_eq!(
            c.redis_url.as_ref().map(Secret::expose),
            Some("redis://127.0.0.1:6379/2")
        );
        assert_eq!(
            c.state_store,
            StateStoreConfig::S3 {
                endpoint: Some("http://127.0.0.1:9000".into()),
                bucket: "b".into(),
                access_key: Some(Secret::new("ak")),
                secret_key: Some(Secret::new("sk")),
                region: Some("eu".into()),
            }
        );
        assert_eq!(c.auth_token, Some(Secret::new("tok-0123456789abcdef")));
        assert_eq!((c.host.to_string().as_str(), c.port), ("127.0.0.1", 9001));
        assert_eq!(c.shutdown_grace, Duration::from_secs(2));
        assert_eq!(c.max_body_bytes, 1024);
        assert_eq!(
            c.browser,
            BrowserConfig {
                cors_origins: vec!["https://chat.lan".into(), "http://127.0.0.1:5173".into()],
                cookie_secure: true,
            }
        );
        assert_eq!(c.stream_ttl, Duration::from_secs(7));
        assert_eq!(c.model_idle_timeout, Duration::from_secs(3));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(
            c.openai.base_url.as_deref(),
            Some("http://localhost:8080/v1")
        );
        assert_eq!(c.anthropic.api_key, Some(Secret::new("a")));
        assert_eq!(c.gateways.keys().collect::<Vec<_>>(), vec!["mygw"]);
        assert_eq!(
            c.gateways["mygw"].base_url.as_deref(),
            Some("http://gw:4000")
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&str, &str, &str)] = &[
            ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
            ("DATABASE_URL", "sqlite://", "DATABASE_URL"),
            ("REDIS_URL", "localhost:6379", "REDIS_URL"),
            ("STATE_STORE", "ftp", "STATE_STORE"),
            ("STATE_STORE", "s3", "S3_BUCKET"),
            ("PORT", "80a", "PORT"),
            ("PORT", "70000", "PORT"),
            ("HOST", "example", "HOST"),
            ("SHUTDOWN_GRACE_SECS", "-1", "SHUTDOWN_GRACE_SECS"),
            ("STREAM_TTL_SECS", "0", "STREAM_TTL_SECS"),
            ("MODEL_IDLE_TIMEOUT_SECS", "0", "MODEL_IDLE_TIMEOUT_SECS"),
            ("MAX_BODY_BYTES", "0", "MAX_BODY_BYTES"),
            ("LOG_FORMAT", "xml", "LOG_FORMAT"),
            ("OPENAI_BASE_URL", "localhost", "OPENAI_BASE_URL"),
            ("MYGW_BASE_URL", "ftp://x", "MYGW_BASE_URL"),
            ("AUTH_TOKEN", "a", "AUTH_TOKEN"),
            ("AUTH_TOKEN", "fifteen-chars-x", "AUTH_TOKEN"),
            ("SANDBOX_REQUIRED", "maybe", "SANDBOX_REQUIRED"),
            ("SHELL_RLIMITS", "mem=1", "SHELL_RLIMITS"),
            ("FETCH_ALLOW_PRIVATE", "maybe", "FETCH_ALLOW_PRIVATE"),
            ("MAX_CONNECTIONS", "0", "MAX_CONNECTIONS"),
            ("MAX_CONNECTIONS", "many", "MAX_CONNECTIONS"),
            ("HEADER_READ_TIMEOUT_SECS", "0", "HEADER_READ_TIMEOUT_SECS"),
            ("BODY_READ_TIMEOUT_SECS", "-3", "BODY_READ_TIMEOUT_SECS"),
            ("IDLE_TIMEOUT_SECS", "0", "IDLE_TIMEOUT_SECS"),
            ("FETCH_ALLOW_HOSTS", "10.0.0.0/99", "FETCH_ALLOW_HOSTS"),
            ("FETCH_ALLOW_HOSTS", "nas.lan:http", "FETCH_ALLOW_HOSTS"),
            ("CORS_ORIGINS", "*", "CORS_ORIGINS"),
            ("CORS_ORIGINS", "https://a.lan/app", "CORS_ORIGINS"),
            ("CORS_ORIGINS", "a.lan", "CORS_ORIGINS"),
            ("COOKIE_SECURE", "maybe", "COOKIE_SECURE"),
        ];
        for (var, value, named) in cases {
            let err = parse(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, *named, "{var}={value}");
            assert!(err.to_string().starts_with(&format!("{named}: ")), "{err}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let c = parse(&[
            ("AUTH_TOKEN", "hunter2-hunter2-hunter2"),
            ("OPENAI_API_KEY", "sk-live"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("sk-live"),
            "{shown}"
        );
    }

    #[test]
    fn secret_values_include_keys_tokens_and_url_passwords() {
        let c = parse(&[
            ("AUTH_TOKEN", "token-0123456789abcdef"),
            ("OPENAI_API_KEY", "sk-openai"),
            ("MYGW_API_KEY", "gw-key"),
            ("DATABASE_URL", "postgres://app:db-pass@db:5432/x"),
            ("REDIS_URL", "redis://:redis-pass@cache:6379"),
            ("STATE_STORE", "s3"),
            ("S3_BUCKET", "b"),
            ("S3_SECRET_KEY", "s3-secret"),
            // The web services' keys are secrets too (and no gateways).
            ("TAVILY_API_KEY", "tavily-key"),
            ("FIRECRAWL_API_KEY", "firecrawl-key"),
            ("GOOGLE_SEARCH_API_KEY", "google-key"),
            ("GOOGLE_SEARCH_CX", "engine-id"),
        ])
        .unwrap();
        let mut values = c.secret_values();
        values.sort();
        assert_eq!(
            values,
            [
                "db-pass",
                "firecrawl-key",
                "google-key",
                "gw-key",
                "redis-pass",
                "s3-secret",
                "sk-openai",
                "tavily-key",
                "token-0123456789abcdef"
            ]
        );
        assert_eq!(c.gateways.keys().collect::<Vec<_>>(), vec!["mygw"]);
    }

    #[test]
    fn web_services_take_their_keys_and_base_urls_and_google_needs_both_values() {
        let c = parse(&[
            ("TAVILY_API_KEY", "tvly"),
            ("TAVILY_BASE_URL", "http://127.0.0.1:9/"),
            ("FIRECRAWL_API_KEY", "fc"),
        ])
        .unwrap();
        assert_eq!(c.web.tavily.base_url.as_deref(), Some("http://127.0.0.1:9"));
        assert!(c.web.firecrawl.api_key.is_some() && c.web.google.api_key.is_none());
        let e = parse(&[("GOOGLE_SEARCH_API_KEY", "g")]).unwrap_err();
        assert_eq!(e.var, "GOOGLE_SEARCH_CX");
        let e = parse(&[("GOOGLE_SEARCH_CX", "cx")]).unwrap_err();
        assert_eq!(e.var, "GOOGLE_SEARCH_API_KEY");
        let e = parse(&[("FIRECRAWL_BASE_URL", "ftp://x")]).unwrap_err();
        assert_eq!(e.var, "FIRECRAWL_BASE_URL");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = parse(&[("PORT", ""), ("REDIS_URL", "  ")]).unwrap();
        assert_eq!(c.port, 8000);
        assert_eq!(c.redis_url, None);
    }

    #[test]
    fn max_file_bytes_defaults_to_10_mib_and_must_be_positive() {
        assert_eq!(parse(&[]).unwrap().max_file_bytes, 10 << 20);
        let c = parse(&[("MAX_FILE_BYTES", "4096")]).unwrap();
        assert_eq!(c.max_file_bytes, 4096);
        for bad in ["0", "-1", "10MB"] {
            let e = parse(&[("MAX_FILE_BYTES", bad)]).unwrap_err();
            assert_eq!(e.var, "MAX_FILE_BYTES", "{bad}");
        }
    }

    #[test]
    fn retention_is_off_by_default_and_takes_days_with_decimals() {
        assert_eq!(parse(&[]).unwrap().retention, None);
        let c = parse(&[("RETENTION_DAYS", "30")]).unwrap();
        let policy = c.retention.unwrap();
        assert_eq!(policy.keep_archived, Duration::from_secs(30 * 86_400));
        assert_eq!(policy.every, Duration::from_secs(3600));
        let c = parse(&[("RETENTION_DAYS", "0.5"), ("RETENTION_SWEEP_SECS", "60")]).unwrap();
        let policy = c.retention.unwrap();
        assert_eq!(policy.keep_archived, Duration::from_secs(43_200));
        assert_eq!(policy.every, Duration::from_secs(60));
        for bad in ["0", "-1", "NaN", "inf", "1e9", "thirty"] {
            let e = parse(&[("RETENTION_DAYS", bad)]).unwrap_err();
            assert_eq!(e.var, "RETENTION_DAYS", "{bad}");
        }
        let e = parse(&[("RETENTION_SWEEP_SECS", "0")]).unwrap_err();
        assert_eq!(e.var, "RETENTION_SWEEP_SECS");
    }
}
