//! Every setting the service reads, for the command line: each is a flag
//! (`--database-url`) and an environment variable (`DATABASE_URL`), and `--help` lists it
//! with its default. [`super::Config::from_vars`] stays the one parser of their values.

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// The default as `--help` shows it; empty when unset means "off" or "none".
    pub default: &'static str,
    pub help: &'static str,
}

const fn var(name: &'static str, default: &'static str, help: &'static str) -> Variable {
    Variable {
        name,
        default,
        help,
    }
}

/// Every setting, in the README's order.
pub const VARIABLES: &[Variable] = &[
    var(
        "DATABASE_URL",
        "sqlite://./data/runtime.db",
        "sqlite://path or postgres://user@host:port/db[?sslmode=require|verify-full&sslrootcert=ca.pem]",
    ),
    var(
        "REDIS_URL",
        "",
        "redis://host:port[/db] or rediss:// for the Redis Streams event bus; unset: in-process bus",
    ),
    var(
        "REDIS_CA_FILE",
        "",
        "PEM certificates to trust for a rediss:// server",
    ),
    var("STATE_STORE", "local", "local or s3"),
    var(
        "STATE_STORE_PATH",
        "./data",
        "root of the local state store",
    ),
    var("S3_ENDPOINT", "", "S3-compatible endpoint (STATE_STORE=s3)"),
    var("S3_BUCKET", "", "S3 bucket (required with STATE_STORE=s3)"),
    var("S3_ACCESS_KEY", "", "S3 access key"),
    var("S3_SECRET_KEY", "", "S3 secret key"),
    var("S3_REGION", "us-east-1", "S3 region"),
    var(
        "AUTH_TOKEN",
        "generated",
        "bearer token of the API, at least 16 characters; unset: generated into <data dir>/auth_token",
    ),
    var("WORKSPACE_ROOT", "./workspace", "where agents work"),
    var(
        "PROTECTED_PATHS",
        "",
        "comma-separated paths no agent may reach",
    ),
    var(
        "SANDBOX_READ_PATHS",
        "",
        "comma-separated paths the shell sandbox may read besides the system directories",
    ),
    var(
        "SANDBOX_REQUIRED",
        "false",
        "refuse shell commands where Landlock is missing",
    ),
    var(
        "SHELL_RLIMITS",
        "fsize=1G,nofile=1024,cpu=600,nproc=512",
        "limits of every shell command",
    ),
    var(
        "SANDBOX_HELPER",
        "this binary",
        "the agent-runtime binary that runs the sandbox helper",
    ),
    var(
        "HOST",
        "127.0.0.1",
        "listen address (0.0.0.0: every interface)",
    ),
    var("PORT", "8000", "listen port (0: a free one)"),
    var("MAX_CONNECTIONS", "4096", "connections served at once"),
    var(
        "HEADER_READ_TIMEOUT_SECS",
        "10",
        "time for a request's headers to arrive",
    ),
    var(
        "BODY_READ_TIMEOUT_SECS",
        "60",
        "time for a request's body to arrive",
    ),
    var(
        "IDLE_TIMEOUT_SECS",
        "60",
        "how long a kept-alive connection may wait for its next request",
    ),
    var(
        "SHUTDOWN_GRACE_SECS",
        "5",
        "how long running runs may finish after SIGTERM",
    ),
    var("MAX_BODY_BYTES", "10485760", "request body cap"),
    var(
        "CORS_ORIGINS",
        "",
        "comma-separated origins whose pages may call the API with credentials",
    ),
    var(
        "COOKIE_SECURE",
        "false",
        "send the session cookie over HTTPS only",
    ),
    var(
        "STREAM_TTL_SECS",
        "300",
        "how long a finished run's events stay attachable",
    ),
    var(
        "MODEL_IDLE_TIMEOUT_SECS",
        "120",
        "longest silence from a model provider",
    ),
    var(
        "MODEL_MAX_RETRIES",
        "3",
        "retries of a model request after a 429, 5xx or connection error",
    ),
    var(
        "MODEL_BREAKER_FAILURES",
        "5",
        "outages in a row (connection errors, 5xx, 429) that open a provider endpoint's circuit breaker",
    ),
    var(
        "MODEL_BREAKER_COOLDOWN_SECS",
        "30",
        "how long an open breaker skips its endpoint before one trial request",
    ),
    var(
        "TITLE_MODEL",
        "",
        "a cheap model (provider:model) that titles new conversations; unset: the first user text, cut at 60 characters",
    ),
    var(
        "RETENTION_DAYS",
        "",
        "days (decimals allowed) an archived conversation is kept after its last change, then deleted; unset: kept until deleted",
    ),
    var(
        "RETENTION_SWEEP_SECS",
        "3600",
        "pause between two retention sweeps (the first runs at start)",
    ),
    var(
        "MAX_CONCURRENT_RUNS",
        "1024",
        "runs going at once (async subagents included); more get 429 too_many_runs",
    ),
    var(
        "METRICS_PUBLIC",
        "false",
        "serve /metrics without the token",
    ),
    var(
        "WEBHOOKS",
        "",
        "JSON list of webhooks: [{url, events?, secret?, format?: json|ntfy|gotify}]",
    ),
    var("TAVILY_API_KEY", "", "web search through Tavily"),
    var(
        "TAVILY_BASE_URL",
        "https://api.tavily.com",
        "Tavily's base URL",
    ),
    var(
        "GOOGLE_SEARCH_API_KEY",
        "",
        "web search through Google Programmable Search (with GOOGLE_SEARCH_CX)",
    ),
    var("GOOGLE_SEARCH_CX", "", "the Programmable Search engine id"),
    var(
        "GOOGLE_SEARCH_BASE_URL",
        "https://www.googleapis.com",
        "Google search's base URL",
    ),
    var("FIRECRAWL_API_KEY", "", "web scraping through Firecrawl"),
    var(
        "FIRECRAWL_BASE_URL",
        "https://api.firecrawl.dev",
        "Firecrawl's base URL",
    ),
    var(
        "FETCH_ALLOW_PRIVATE",
        "false",
        "let URLs of callers and models reach private ranges",
    ),
    var(
        "FETCH_ALLOW_HOSTS",
        "",
        "comma-separated host[:port] or CIDR exempt from the outbound policy",
    ),
    var(
        "LOG_FORMAT",
        "text",
        "text or json (RUST_LOG sets the filter)",
    ),
    var("OPENAI_API_KEY", "", "OpenAI and OpenAI-compatible servers"),
    var(
        "OPENAI_BASE_URL",
        "https://api.openai.com/v1",
        "OpenAI-compatible base URL",
    ),
    var("ANTHROPIC_API_KEY", "", "Anthropic"),
    var(
        "ANTHROPIC_BASE_URL",
        "https://api.anthropic.com",
        "Anthropic's base URL (with or without /v1)",
    ),
    var(
        "MAX_FILE_BYTES",
        "10485760",
        "the most a file tool reads or writes in one call",
    ),
];

/// The flag of a variable: `DATABASE_URL` → `database-url`.
pub fn flag_of(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}
