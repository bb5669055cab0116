//! `GET /api/health`: no auth; 503 when the database is down.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json};

use super::{ApiState, Tag};

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
}

#[derive(ApiResponse)]
enum HealthResponse {
    /// The database answers.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// The database does not answer.
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

#[OpenApi(tag = "Tag::Health")]
impl HealthApi {
    /// Health of the service and its backends (no auth).
    #[oai(path = "/health", method = "get", operation_id = "health_get")]
    async fn get(&self, state: Data<&Arc<ApiState>>) -> HealthResponse {
        let report = state.health.check().await;
        let status = match (report.database, report.event_bus && report.state_store) {
            (false, _) => HealthStatus::Unavailable,
            (true, false) => HealthStatus::Degraded,
            (true, true) => HealthStatus::Ok,
        };
        let body = Health {
            status,
            database: component(report.database),
            event_bus: component(report.event_bus),
            state_store: component(report.state_store),
            sandbox: if report.sandbox {
                SandboxStatus::Available
            } else {
                SandboxStatus::Unavailable
            },
        };
        if report.database {
            HealthResponse::Ok(Json(body))
        } else {
            HealthResponse::Unavailable(Json(body))
        }
    }
}
