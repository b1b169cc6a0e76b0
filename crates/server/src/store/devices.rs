//! Devices and their KeyPackages.
//!
//! A claim hands out each one-time KeyPackage at most once: it is removed by one
//! `DELETE … RETURNING` statement, which two claimers cannot both win. Only when a
//! device has no one-time package left is its last-resort package returned, and
//! that one is kept.

use super::{Result, Store, with_pool};
use conclave_proto::{DeviceId, UserId};

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceRecord {
    /// The device.
    pub id: DeviceId,
    /// Its user.
    pub user: UserId,
    /// Its MLS signature public key.
    pub signature_key: Vec<u8>,
}

/// How many times a claim retries when a concurrent claimer took the package it
/// aimed at (PostgreSQL re-checks a deleted row and skips it) before settling
/// for the last-resort package.
const CLAIM_ATTEMPTS: usize = 8;

impl Store {
    /// Registers a device of `user` with its signature key.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] when the key is already registered.
    pub(crate) async fn create_device(
        &self,
        user: UserId,
        signature_key: &[u8],
        now: i64,
    ) -> Result<DeviceId> {
        let id: i64 = with_pool!(self, pool => sqlx::query_scalar(
            "INSERT INTO devices (user_id, signature_key, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(user.0)
        .bind(signature_key)
        .bind(now)
        .fetch_one(pool)
        .await?);
        Ok(DeviceId(id))
    }

    /// A device by id.
    pub(crate) async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>> {
        let row: Option<(i64, i64, Vec<u8>)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, user_id, signature_key FROM devices WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(device_record))
    }

    /// The device registered with `signature_key`, if any.
    pub(crate) async fn device_by_key(&self, signature_key: &[u8]) -> Result<Option<DeviceRecord>> {
        let row: Option<(i64, i64, Vec<u8>)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, user_id, signature_key FROM devices WHERE signature_key = $1",
        )
        .bind(signature_key)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(device_record))
    }

    /// The ids of `user`'s devices, oldest first.
    pub(crate) async fn devices_of(&self, user: UserId) -> Result<Vec<DeviceId>> {
        let ids: Vec<i64> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM devices WHERE user_id = $1 ORDER BY id",
        )
        .bind(user.0)
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(DeviceId).collect())
    }

    /// Stores one-time KeyPackages for `device` and, if given, replaces its
    /// last-resort package, unless that would leave more than `max` one-time
    /// packages. Returns how many one-time packages the device then holds, or
    /// `None` (and stores nothing) when over `max`.
    pub(crate) async fn add_key_packages(
        &self,
        device: DeviceId,
        packages: &[Vec<u8>],
        last_resort: Option<&[u8]>,
        max: usize,
    ) -> Result<Option<u32>> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Writing first takes the write lock (SQLite) before anything is read.
            for data in packages {
                sqlx::query("INSERT INTO key_packages (device_id, data, last_resort) VALUES ($1, $2, FALSE)")
                    .bind(device.0)
                    .bind(data.as_slice())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(data) = last_resort {
                sqlx::query("DELETE FROM key_packages WHERE device_id = $1 AND last_resort")
                    .bind(device.0)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO key_packages (device_id, data, last_resort) VALUES ($1, $2, TRUE)")
                    .bind(device.0)
                    .bind(data)
                    .execute(&mut *tx)
                    .await?;
            }
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM key_packages WHERE device_id = $1 AND NOT last_resort",
            )
            .bind(device.0)
            .fetch_one(&mut *tx)
            .await?;
            if usize::try_from(held).unwrap_or(usize::MAX) > max {
                tx.rollback().await?;
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(u32::try_from(held).unwrap_or(u32::MAX)))
        })
    }

    /// How many one-time KeyPackages `device` has left.
    pub(crate) async fn key_packages_left(&self, device: DeviceId) -> Result<u32> {
        let held: i64 = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM key_packages WHERE device_id = $1 AND NOT last_resort",
        )
        .bind(device.0)
        .fetch_one(pool)
        .await?);
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }

    /// Claims one KeyPackage of `device`: the oldest one-time package, removed in
    /// the same statement that reads it, else the last-resort package (kept).
    /// `None` when the device has neither.
    pub(crate) async fn claim_key_package(&self, device: DeviceId) -> Result<Option<Vec<u8>>> {
        for _ in 0..CLAIM_ATTEMPTS {
            let taken: Option<Vec<u8>> = with_pool!(self, pool => sqlx::query_scalar(
                "DELETE FROM key_packages WHERE id = (\
                   SELECT id FROM key_packages WHERE device_id = $1 AND NOT last_resort ORDER BY id LIMIT 1\
                 ) RETURNING data",
            )
            .bind(device.0)
            .fetch_optional(pool)
            .await?);
            if taken.is_some() {
                return Ok(taken);
            }
            if self.key_packages_left(device).await? == 0 {
                break;
            }
            // A concurrent claim took the package this one aimed at; try the next.
        }
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT data FROM key_packages WHERE device_id = $1 AND last_resort",
        )
        .bind(device.0)
        .fetch_optional(pool)
        .await?))
    }
}

fn device_record((id, user, signature_key): (i64, i64, Vec<u8>)) -> DeviceRecord {
    DeviceRecord { id: DeviceId(id), user: UserId(user), signature_key }
}
