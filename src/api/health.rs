//! Health for people and orchestrators: `GET /api/health` (no auth; the backends, the
//! sandbox and whether the service is draining; 503 when the database is down),
//! `/api/health/live` (the process answers), `/api/health/ready` (503 while draining or with
//! the database down, so a load balancer stops sending runs), and `GET /api/info` (behind
//! the token: version, commit, backends, uptime).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json};

use super::{ApiState, Tag, auth::Auth, error::ErrorResponse};

/// One backend's state.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ComponentStatus {
    Connected,
    Error,
}

/// Whether shell commands run under the Landlock sandbox: `available`, or `unavailable`
/// (this kernel does not enforce Landlock: commands run without it, or are refused when
/// `SANDBOX_REQUIRED=true`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum SandboxStatus {
    Available,
    Unavailable,
}

/// Overall state: `ok`, `degraded` (event bus or state store down) or `unavailable`
/// (database down).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
    Unavailable,
}

/// Health of the service and its backends.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct Health {
    pub status: HealthStatus,
    pub database: ComponentStatus,
    pub event_bus: ComponentStatus,
    pub state_store: ComponentStatus,
    pub sandbox: SandboxStatus,
    /// The service is shutting down: new runs are refused (503) while running ones finish.
    pub draining: bool,
}

/// Body of `health_live`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct Liveness {
    /// Always `ok`: the process answers.
    pub status: String,
}

/// What runs here: for operators and bug reports.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ServiceInfo {
    pub version: String,
    /// The commit the binary was built from (`unknown` outside a git checkout).
    pub git_commit: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// `in_process` or `redis`.
    pub event_bus: String,
    /// `local` or `s3`.
    pub state_store: String,
    pub sandbox: SandboxStatus,
    pub uptime_secs: u64,
}

/// The fixed part of [`ServiceInfo`], known at start.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub database: &'static str,
    pub event_bus: &'static str,
    pub state_store: &'static str,
    pub started: std::time::Instant,
}

#[derive(ApiResponse)]
enum HealthResponse {
    /// The database answers (for `health_ready`: and the service is not draining).
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// The database does not answer (for `health_ready`: or the service is draining).
    #[oai(status = 503)]
    Unavailable(Json<Health>),
}

pub struct HealthApi;

fn component(up: bool) -> ComponentStatus {
    if up {
        ComponentStatus::Connected
    } else {
        ComponentStatus::Error
    }
}

fn sandbox_status(available: bool) -> SandboxStatus {
    if available {
        SandboxStatus::Available
    } else {
        SandboxStatus::Unavailable
    }
}

/// The backends asked now, and whether the service drains.
async fn health_of(state: &ApiState) -> Health {
    let report = state.health.check().await;
    let status = match (report.database, report.event_bus && report.state_store) {
        (false, _) => HealthStatus::Unavailable,
        (true, false) => HealthStatus::Degraded,
        (true, true) => HealthStatus::Ok,
    };
    Health {
        status,
        database: component(report.database),
        event_bus: component(report.event_bus),
        state_store: component(report.state_store),
        sandbox: sandbox_status(report.sandbox),
        draining: state.runs.is_draining(),
    }
}

#[OpenApi(tag = "Tag::Health")]
impl HealthApi {
    /// Health of the service and its backends (no auth); 503 when the database is down.
    #[oai(path = "/health", method = "get", operation_id = "health_get")]
    async fn get(&self, state: Data<&Arc<ApiState>>) -> HealthResponse {
        let health = health_of(&state).await;
        if health.database == ComponentStatus::Connected {
            HealthResponse::Ok(Json(health))
        } else {
            HealthResponse::Unavailable(Json(health))
        }
    }

    /// Liveness (no auth): 200 while the process answers, whatever its backends.
    #[oai(path = "/health/live", method = "get", operation_id = "health_live")]
    async fn live(&self) -> Json<Liveness> {
        Json(Liveness {
            status: "ok".to_owned(),
        })
    }

    /// Readiness (no auth): 503 while the service drains at shutdown or the database is
    /// down, so a load balancer sends its runs elsewhere.
    #[oai(path = "/health/ready", method = "get", operation_id = "health_ready")]
    async fn ready(&self, state: Data<&Arc<ApiState>>) -> HealthResponse {
        let health = health_of(&state).await;
        if health.database == ComponentStatus::Connected && !health.draining {
            HealthResponse::Ok(Json(health))
        } else {
            HealthResponse::Unavailable(Json(health))
        }
    }

    /// What runs here: version, commit, backends, sandbox, uptime.
    #[oai(path = "/info", method = "get", operation_id = "health_info")]
    async fn info(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
    ) -> Result<Json<ServiceInfo>, ErrorResponse> {
        let deployment = &state.deployment;
        Ok(Json(ServiceInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: env!("AGENT_RUNTIME_GIT_COMMIT").to_owned(),
            database: deployment.database.to_owned(),
            event_bus: deployment.event_bus.to_owned(),
            state_store: deployment.state_store.to_owned(),
            sandbox: sandbox_status(state.health.check().await.sandbox),
            uptime_secs: deployment.started.elapsed().as_secs(),
        }))
    }
}
