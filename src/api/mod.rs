//! The HTTP layer: poem-openapi operations over the core's use cases, bearer auth, the JSON
//! error shape for every failure, the body cap, Swagger UI and the published document.

mod acceptor;
mod ag_ui;
mod allow;
mod auth;
mod conversations;
mod cookie_sessions;
mod cors;
mod document;
pub mod dto;
pub mod edge;
pub mod error;
pub mod health;
mod middleware;
mod notifications;
mod openai;
mod presets;
mod run_operations;
mod runs;
mod sessions;
mod sign_in;
pub mod sse;
mod web_ui;

use std::sync::{Arc, OnceLock};

use poem::{Endpoint, EndpointExt, Response, Route, get, handler, web::Html};
use poem_openapi::{OpenApiService, Tags};

use crate::core::{
    chat::ChatService,
    execution::{LiveRuns, Queries, Retries, RunEngine},
    health::HealthCheck,
    presets::PresetService,
};

pub use auth::AuthToken;
use cookie_sessions::CookieSessions;
use cors::CorsOrigins;

use crate::config::BrowserConfig;

/// The use cases the handlers call.
pub struct ApiState {
    pub presets: PresetService,
    /// The OpenAI-compatible chats of `/v1`.
    pub chat: ChatService,
    pub health: HealthCheck,
    /// The backends in use and the start time, for `info_get`.
    pub deployment: health::Deployment,
    pub runs: Arc<RunEngine>,
    pub live: Arc<LiveRuns>,
    pub queries: Arc<Queries>,
    /// Deletes conversations.
    pub retention: Arc<crate::core::execution::Retention>,
    pub retries: Retries,
    /// What `/metrics` renders.
    pub metrics: Arc<dyn ports::Metrics>,
    /// What `notifications_stream` reads.
    pub notifier: Arc<crate::core::notifications::Notifier>,
}

/// Operation groups; generated clients name their modules after these.
#[derive(Tags)]
pub enum Tag {
    /// Service health.
    #[oai(rename = "health")]
    Health,
    /// Agent presets (admin).
    #[oai(rename = "presets")]
    Presets,
    /// Conversations: run, continue, fork, control and read the chat.
    #[oai(rename = "conversations")]
    Conversations,
    /// Sessions: lower-level runs and their snapshots.
    #[oai(rename = "sessions")]
    Sessions,
    /// Signing a browser page in and out (a session cookie instead of the bearer header).
    #[oai(rename = "auth")]
    Auth,
    /// What happens to sessions and conversations, as it happens.
    #[oai(rename = "notifications")]
    Notifications,
}

type Apis = (
    health::HealthApi,
    presets::PresetsApi,
    run_operations::ConversationRunsApi,
    conversations::ConversationsApi,
    run_operations::SessionRunsApi,
    sessions::SessionsApi,
    sign_in::SignInApi,
    notifications::NotificationsApi,
);

/// The OpenAPI service; needs no state, so the document can be produced offline.
pub fn openapi_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            health::HealthApi,
            presets::PresetsApi,
            run_operations::ConversationRunsApi,
            conversations::ConversationsApi,
            run_operations::SessionRunsApi,
            sessions::SessionsApi,
            sign_in::SignInApi,
            notifications::NotificationsApi,
        ),
        "agent-runtime",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Runs LLM agents: presets, conversations, sessions, live events.")
    .license(poem_openapi::LicenseObject::new("MIT").url("https://opensource.org/licenses/MIT"))
    .server("/api")
}

/// The published document as JSON (what `openapi/openapi.json` holds).
pub fn spec_json() -> String {
    document::json(&openapi_service().spec())
}

/// The published document as YAML.
pub fn spec_yaml() -> String {
    document::yaml(&openapi_service().spec())
}

/// Settings of the HTTP layer.
pub struct HttpSettings {
    pub auth_token: String,
    pub max_body_bytes: usize,
    pub browser: BrowserConfig,
    /// `METRICS_PUBLIC`: `/metrics` without credentials.
    pub metrics_public: bool,
}

/// The whole HTTP application.
pub fn endpoint(state: Arc<ApiState>, settings: HttpSettings) -> impl Endpoint {
    let service = openapi_service();
    let cookie_sessions = Arc::new(CookieSessions::new(settings.browser.cookie_secure));
    let outer = Arc::new(middleware::Outer {
        auth_token: settings.auth_token.clone(),
        max_body_bytes: settings.max_body_bytes,
        allow: allow::AllowIndex::from_spec(&service.spec()),
        cors: CorsOrigins::new(settings.browser.cors_origins),
        cookie_sessions: cookie_sessions.clone(),
        metrics: state.metrics.clone(),
        metrics_public: settings.metrics_public,
    });
    Route::new()
        .at("/", get(web_ui::page))
        .at("/assets/:hash/*path", get(web_ui::asset))
        .at("/docs", get(docs_page))
        .at("/api/openapi.json", get(openapi_json))
        .at("/api/openapi.yaml", get(openapi_yaml))
        .at("/api/ag-ui/:preset_id", poem::post(ag_ui::run))
        .at(auth::METRICS_PATH, get(metrics_page))
        .nest("/api", service)
        .nest("/v1", openai::routes())
        .data(state)
        .data(AuthToken(settings.auth_token))
        .data(cookie_sessions)
        .around(move |ep, req| middleware::handle(ep, req, outer.clone()))
}

/// Prometheus' scrape: every series in its text format.
#[poem::handler]
fn metrics_page(state: poem::web::Data<&Arc<ApiState>>) -> poem::Response {
    poem::Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// The published documents, built by the first request for one: building them takes a
/// few MB that an idle service need not hold.
struct Documents {
    json: String,
    yaml: String,
    swagger_ui: String,
}

/// The value of `cell`, built by the first caller off the async workers (building takes
/// tens of milliseconds of CPU); callers racing the first build may each build it once.
async fn built_once<T: Send + Sync + 'static>(
    cell: &'static OnceLock<T>,
    build: fn() -> T,
) -> &'static T {
    if let Some(built) = cell.get() {
        return built;
    }
    let built = tokio::task::spawn_blocking(build)
        .await
        .unwrap_or_else(|_| build());
    cell.get_or_init(|| built)
}

impl Documents {
    async fn get() -> &'static Self {
        static DOCUMENTS: OnceLock<Documents> = OnceLock::new();
        built_once(&DOCUMENTS, Self::build).await
    }

    fn build() -> Self {
        let service = openapi_service();
        let raw = service.spec();
        let json = document::json(&raw);
        // Swagger UI shows the published document, not poem-openapi's own.
        let swagger_ui = service.swagger_ui_html().replace(&raw, &json);
        Self {
            yaml: document::yaml(&raw),
            json,
            swagger_ui,
        }
    }
}

fn document(body: &str, content_type: &str) -> Response {
    Response::builder()
        .content_type(content_type)
        .body(body.to_owned())
}

#[handler]
async fn openapi_json() -> Response {
    document(
        &Documents::get().await.json,
        "application/json; charset=utf-8",
    )
}

#[handler]
async fn openapi_yaml() -> Response {
    document(
        &Documents::get().await.yaml,
        "application/yaml; charset=utf-8",
    )
}

#[handler]
async fn docs_page() -> Html<String> {
    Html(Documents::get().await.swagger_ui.clone())
}
