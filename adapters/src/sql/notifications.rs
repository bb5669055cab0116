//! `NotificationRepo` on SQL: one row per notification, its body as JSON; appending also
//! drops the rows beyond the cap, so the log stays bounded without a sweeper.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ports::{NewNotification, Notification, NotificationRepo, StorageError};

use super::{BackendExt, SqlStorage, db_err, schema::notifications, with_conn};

/// Rows of one insert statement: well under SQLite's limit of bound values per statement,
/// however large a batch a caller hands over.
const ROWS_PER_INSERT: usize = 500;

#[async_trait]
impl NotificationRepo for SqlStorage {
    async fn append_notifications(
        &self,
        batch: &[NewNotification],
        keep: u64,
    ) -> Result<Vec<u64>, StorageError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let bodies = batch
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StorageError::Other(Box::new(e)))?;
        let mut ids: Vec<i64> = with_conn!(self, write, |c| {
            let mut ids = Vec::with_capacity(bodies.len());
            for rows in bodies.chunks(ROWS_PER_INSERT) {
                ids.extend(c.insert_notifications(rows).await.map_err(db_err)?);
            }
            let newest = ids.iter().copied().max().unwrap_or(0);
            let oldest_kept = newest.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX)) + 1;
            if oldest_kept > 1 {
                diesel::delete(notifications::table.filter(notifications::id.lt(oldest_kept)))
                    .execute(c)
                    .await
                    .map_err(db_err)?;
            }
            ids
        });
        // `RETURNING` promises no row order; the ids' order is the values' order.
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| u64::try_from(id).map_err(|e| StorageError::Other(Box::new(e))))
            .collect()
    }

    async fn notifications_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Notification>, StorageError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let rows: Vec<(i64, String)> = with_conn!(self, read, |c| {
            notifications::table
                .filter(notifications::id.gt(after))
                .order(notifications::id.asc())
                .limit(i64::from(limit))
                .select((notifications::id, notifications::body))
                .load(c)
                .await
                .map_err(db_err)?
        });
        rows.into_iter()
            .map(|(id, body)| {
                Ok(Notification {
                    id: u64::try_from(id).map_err(|e| StorageError::Other(Box::new(e)))?,
                    body: serde_json::from_str(&body).map_err(|e| {
                        StorageError::Other(format!("notification {id}: {e}").into())
                    })?,
                })
            })
            .collect()
    }
}
