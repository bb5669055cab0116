//! The HTTP layer: poem-openapi operations over the core's use cases, bearer auth, the JSON
//! error shape for every failure, the body cap, Swagger UI and the published document.

mod acceptor;
mod allow;
mod auth;
mod conversations;
pub mod dto;
pub mod edge;
pub mod error;
mod health;
mod middleware;
mod presets;
mod runs;
mod sessions;
pub mod sse;

use std::sync::Arc;

use poem::{
    Endpoint, EndpointExt, Request, Response, Route, get, handler,
    web::{Data, Html},
};
use poem_openapi::{OpenApiService, Tags};

use crate::core::{
    execution::{LiveRuns, Queries, RunEngine},
    health::HealthCheck,
    presets::PresetService,
};

pub use auth::AuthToken;

/// The use cases the handlers call.
pub struct ApiState {
    pub presets: PresetService,
    pub health: HealthCheck,
    pub runs: Arc<RunEngine>,
    pub live: Arc<LiveRuns>,
    pub queries: Arc<Queries>,
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
}

type Apis = (
    health::HealthApi,
    presets::PresetsApi,
    conversations::ConversationsApi,
    sessions::SessionsApi,
);

/// The OpenAPI service; needs no state, so the document can be produced offline.
pub fn openapi_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            health::HealthApi,
            presets::PresetsApi,
            conversations::ConversationsApi,
            sessions::SessionsApi,
        ),
        "agent-runtime",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Runs LLM agents: presets, conversations, sessions, live events.")
    .server("/api")
}

/// The published document as JSON (what `openapi/openapi.json` holds).
pub fn spec_json() -> String {
    openapi_service().spec()
}

/// The published document as YAML.
pub fn spec_yaml() -> String {
    openapi_service().spec_yaml()
}

/// Settings of the HTTP layer.
pub struct HttpSettings {
    pub auth_token: String,
    pub max_body_bytes: usize,
}

/// The whole HTTP application.
pub fn endpoint(state: Arc<ApiState>, settings: HttpSettings) -> impl Endpoint {
    let service = openapi_service();
    let documents = Arc::new(Documents {
        json: service.spec(),
        yaml: service.spec_yaml(),
    });
    let outer = Arc::new(middleware::Outer {
        auth_token: settings.auth_token.clone(),
        max_body_bytes: settings.max_body_bytes,
        allow: allow::AllowIndex::from_spec(&documents.json),
    });
    Route::new()
        .at("/", get(landing))
        .nest("/docs", service.swagger_ui())
        .at("/api/openapi.json", get(openapi_json))
        .at("/api/openapi.yaml", get(openapi_yaml))
        .nest("/api", service)
        .data(state)
        .data(documents)
        .data(AuthToken(settings.auth_token))
        .around(move |ep, req| middleware::handle(ep, req, outer.clone()))
}

struct Documents {
    json: String,
    yaml: String,
}

fn document(req: &Request, body: &str, content_type: &str) -> Response {
    if !auth::bearer_of(req).is_some_and(|t| auth::authorized(req, t)) {
        return middleware::unauthorized();
    }
    Response::builder()
        .content_type(content_type)
        .body(body.to_owned())
}

#[handler]
fn openapi_json(req: &Request, docs: Data<&Arc<Documents>>) -> Response {
    document(req, &docs.json, "application/json; charset=utf-8")
}

#[handler]
fn openapi_yaml(req: &Request, docs: Data<&Arc<Documents>>) -> Response {
    document(req, &docs.yaml, "application/yaml; charset=utf-8")
}

#[handler]
fn landing() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html><head><meta charset=utf-8><title>agent-runtime</title></head>",
        "<body><h1>agent-runtime</h1><p>The API lives under <code>/api</code>; ",
        "browse it at <a href=\"/docs\">/docs</a>.</p></body></html>"
    ))
}
