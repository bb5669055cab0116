//! `PresetRepo` on SQL.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ports::PresetId;
use ports::{Preset, PresetRepo, StorageError};

use super::{
    BackendExt, SqlStorage, TxError, db_err,
    rows::{self, PresetRow},
    schema::{conversations, presets, sessions},
    with_conn,
};

/// Clears the default flag on every preset but `$keep`, inside the caller's transaction.
/// A macro rather than a function: the body must be typed once per backend.
macro_rules! clear_default {
    ($c:expr, $keep:expr) => {
        diesel::update(
            presets::table
                .filter(presets::is_default.eq(true))
                .filter(presets::preset_id.ne($keep)),
        )
        .set(presets::is_default.eq(false))
        .execute($c)
        .await?
    };
}

#[async_trait]
impl PresetRepo for SqlStorage {
    async fn create_preset(&self, preset: &Preset) -> Result<(), StorageError> {
        let row = PresetRow::from_domain(preset)?;
        with_conn!(self, write, |c| {
            c.transaction::<_, TxError, _>(async |c| {
                if row.is_default {
                    c.lock_default_preset().await?;
                    clear_default!(c, &row.preset_id);
                }
                diesel::insert_into(presets::table)
                    .values(&row)
                    .execute(c)
                    .await?;
                Ok(())
            })
            .await
            .map_err(|TxError(e)| e)
        })
    }

    async fn update_preset(&self, preset: &Preset) -> Result<(), StorageError> {
        let row = PresetRow::from_domain(preset)?;
        with_conn!(self, write, |c| {
            c.transaction::<_, TxError, _>(async |c| {
                if row.is_default {
                    c.lock_default_preset().await?;
                    clear_default!(c, &row.preset_id);
                }
                let changed = diesel::update(presets::table.find(&row.preset_id))
                    .set((
                        presets::name.eq(&row.name),
                        presets::description.eq(&row.description),
                        presets::model.eq(&row.model),
                        presets::system_prompt.eq(&row.system_prompt),
                        presets::toolsets.eq(&row.toolsets),
                        presets::environment.eq(&row.environment),
                        presets::subagents.eq(&row.subagents),
                        presets::tool_config.eq(&row.tool_config),
                        presets::mcp_servers.eq(&row.mcp_servers),
                        presets::limits.eq(&row.limits),
                        presets::is_default.eq(row.is_default),
                        presets::updated_at.eq(row.updated_at),
                    ))
                    .execute(c)
                    .await?;
                if changed == 0 {
                    return Err(StorageError::NotFound.into());
                }
                Ok(())
            })
            .await
            .map_err(|TxError(e)| e)
        })
    }

    async fn get_preset(&self, preset_id: &PresetId) -> Result<Preset, StorageError> {
        let preset_id = preset_id.as_str();
        let row: PresetRow = with_conn!(self, read, |c| {
            presets::table
                .find(preset_id)
                .select(PresetRow::as_select())
                .first(c)
                .await
                .map_err(db_err)?
        });
        row.into_domain()
    }

    async fn list_presets(&self) -> Result<Vec<Preset>, StorageError> {
        let found: Vec<PresetRow> = with_conn!(self, read, |c| {
            presets::table
                .order(presets::preset_id.asc())
                .select(PresetRow::as_select())
                .load(c)
                .await
                .map_err(db_err)?
        });
        rows::all(found, PresetRow::into_domain)
    }

    async fn default_preset(&self) -> Result<Option<Preset>, StorageError> {
        let found: Option<PresetRow> = with_conn!(self, read, |c| {
            presets::table
                .filter(presets::is_default.eq(true))
                .select(PresetRow::as_select())
                .first(c)
                .await
                .optional()
                .map_err(db_err)?
        });
        found.map(PresetRow::into_domain).transpose()
    }

    async fn delete_preset(&self, preset_id: &PresetId) -> Result<(), StorageError> {
        let preset_id = preset_id.as_str();
        with_conn!(self, write, |c| {
            c.transaction::<_, TxError, _>(async |c| {
                let exists: i64 = presets::table.find(preset_id).count().get_result(c).await?;
                if exists == 0 {
                    return Err(StorageError::NotFound.into());
                }
                let conversations_using: i64 = conversations::table
                    .filter(conversations::default_preset_id.eq(preset_id))
                    .filter(conversations::status.eq("active"))
                    .count()
                    .get_result(c)
                    .await?;
                let runs_using: i64 = sessions::table
                    .filter(sessions::preset_id.eq(preset_id))
                    .filter(sessions::status.eq("created"))
                    .count()
                    .get_result(c)
                    .await?;
                if conversations_using + runs_using > 0 {
                    return Err(StorageError::PresetInUse.into());
                }
                diesel::delete(presets::table.find(preset_id))
                    .execute(c)
                    .await?;
                Ok(())
            })
            .await
            .map_err(|TxError(e)| e)
        })
    }

    async fn presets_empty(&self) -> Result<bool, StorageError> {
        let n: i64 = with_conn!(self, read, |c| {
            presets::table.count().get_result(c).await.map_err(db_err)?
        });
        Ok(n == 0)
    }
}
