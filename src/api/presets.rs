//! Preset administration endpoints (spec 06).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{OpenApi, param::Path, payload::Json};
use ports::PresetId;

use super::{
    ApiState, Tag,
    auth::Auth,
    dto::presets::{Preset, PresetCreateRequest, PresetUpdateRequest},
    error::ErrorResponse,
};

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
        let created = state.presets.create(body.0.into_domain()).await?;
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
        let updated = state
            .presets
            .update(&PresetId::from(preset_id.0), body.0.into())
            .await?;
        Ok(Json(updated.into()))
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
