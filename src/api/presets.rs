//! Preset administration endpoints (spec 06).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{OpenApi, param::Path, payload::Json};
use ports::PresetId;

use super::{
    ApiState, Tag,
    auth::Auth,
    dto::presets::{Preset, PresetCreateRequest, PresetUpdateRequest},
    dto::tools::PresetTools,
    error::ErrorResponse,
};
use crate::core::preset_validation::FieldError;
use crate::core::presets::PresetError;

pub struct PresetsApi;

/// Result of `presets_delete`.
#[derive(poem_openapi::Object, Debug, Clone, PartialEq)]
pub struct PresetDeleted {
    pub preset_id: String,
    pub deleted: bool,
}

/// All presets.
#[derive(poem_openapi::Object, Debug, Clone, PartialEq)]
pub struct PresetList {
    pub presets: Vec<Preset>,
}

type Result<T> = std::result::Result<Json<T>, ErrorResponse>;

/// A request field that holds no valid value, as a 422 naming it.
fn invalid((field, message): (String, String)) -> ErrorResponse {
    PresetError::Invalid(vec![FieldError { field, message }]).into()
}

#[OpenApi(tag = "Tag::Presets")]
impl PresetsApi {
    /// Create a preset (409 when the id is taken, 422 listing every broken rule).
    #[oai(
        path = "/presets/create",
        method = "post",
        operation_id = "presets_create"
    )]
    async fn create(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        body: Json<PresetCreateRequest>,
    ) -> Result<Preset> {
        let preset = body.0.into_domain().map_err(invalid)?;
        let created = state.presets.create(preset).await?;
        Ok(Json(created.into()))
    }

    /// List all presets, ordered by id.
    #[oai(path = "/presets/list", method = "get", operation_id = "presets_list")]
    async fn list(&self, _auth: Auth, state: Data<&Arc<ApiState>>) -> Result<PresetList> {
        let presets = state.presets.list().await?;
        Ok(Json(PresetList {
            presets: presets.into_iter().map(Into::into).collect(),
        }))
    }

    /// Get one preset.
    #[oai(
        path = "/presets/:preset_id/get",
        method = "get",
        operation_id = "presets_get"
    )]
    async fn get(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        preset_id: Path<String>,
    ) -> Result<Preset> {
        Ok(Json(
            state
                .presets
                .get(&PresetId::from(preset_id.0))
                .await?
                .into(),
        ))
    }

    /// Change some fields of a preset; the result must still be valid.
    #[oai(
        path = "/presets/:preset_id/update",
        method = "post",
        operation_id = "presets_update"
    )]
    async fn update(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        preset_id: Path<String>,
        body: Json<PresetUpdateRequest>,
    ) -> Result<Preset> {
        let patch = body.0.into_domain().map_err(invalid)?;
        let updated = state
            .presets
            .update(&PresetId::from(preset_id.0), patch)
            .await?;
        Ok(Json(updated.into()))
    }

    /// Every tool a run of the preset would be offered now: the built-in toolsets', the
    /// subagent tools and its MCP servers' (connecting to them), with a warning for each
    /// server that could not be used.
    #[oai(
        path = "/presets/:preset_id/tools",
        method = "get",
        operation_id = "presets_tools"
    )]
    async fn tools(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        preset_id: Path<String>,
    ) -> Result<PresetTools> {
        let offered = state
            .runs
            .offered_tools(&PresetId::from(preset_id.0))
            .await?;
        Ok(Json(offered.into()))
    }

    /// Delete a preset (409 `preset_in_use` while an active conversation or a run uses it).
    #[oai(
        path = "/presets/:preset_id/delete",
        method = "post",
        operation_id = "presets_delete"
    )]
    async fn delete(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        preset_id: Path<String>,
    ) -> Result<PresetDeleted> {
        let preset_id = PresetId::from(preset_id.0);
        state.presets.delete(&preset_id).await?;
        Ok(Json(PresetDeleted {
            preset_id: preset_id.into(),
            deleted: true,
        }))
    }
}
