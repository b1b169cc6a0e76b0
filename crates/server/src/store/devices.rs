//! Devices and their KeyPackages.
//!
//! A claim hands out each one-time KeyPackage at most once: it is removed by one
//! `DELETE … RETURNING` statement, which two claimers cannot both win. Only when a
//! device has no one-time package left (or the claim may not take one) is its
//! last-resort package returned, and that one is kept, marked as handed out.
//!
//! The totals of [`crate::quota`] are counted in the transaction that adds to
//! them, after a no-op `UPDATE` of the owning row (the account for devices, the
//! device for KeyPackages): that takes the row's lock on PostgreSQL and the
//! write lock on SQLite, so two registrations or uploads cannot both count the
//! same total and both pass it.

use super::{Result, Store, with_pool};
use crate::quota::Quota;
use conclave_proto::{DeviceId, SessionId, UserId};

/// The query for [`DeviceRow`]s, with `$where`.
macro_rules! select_device {
    ($where:literal) => {
        concat!(
            "SELECT d.id, d.user_id, u.username, d.signature_key, d.session_id, d.retired_at IS NOT NULL \
             FROM devices d JOIN users u ON u.id = d.user_id ",
            $where
        )
    };
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceRecord {
    /// The device.
    pub id: DeviceId,
    /// Its user.
    pub user: UserId,
    /// Its user's name.
    pub username: String,
    /// Its MLS signature public key.
    pub signature_key: Vec<u8>,
    /// The session it was last bound with.
    pub session: Option<SessionId>,
    /// It was retired ([`crate::handler::retirement`]): it never binds again.
    pub retired: bool,
}

/// A device as its owner's device list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceListing {
    /// The device.
    pub id: DeviceId,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: when a connection last bound it.
    pub last_bound_at: i64,
    /// The client name of the session it was last bound with.
    pub client: String,
    /// It was last bound with the session asking.
    pub this_session: bool,
}

/// A KeyPackage handed out by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claimed {
    /// The KeyPackage.
    pub data: Vec<u8>,
    /// It is the device's last-resort package.
    pub last_resort: bool,
    /// It is the last-resort package, handed out for the first time since it
    /// was uploaded: the device's owner should be told.
    pub first_use: bool,
}

/// How many times a claim retries when a concurrent claimer took the package it
/// aimed at (PostgreSQL re-checks a deleted row and skips it) before settling
/// for the last-resort package.
const CLAIM_ATTEMPTS: usize = 8;

impl Store {
    /// Registers a device of `user` with its signature key, bound with
    /// `session`, unless the user has `max` devices that are not retired
    /// already (`None`). Counted under the account's row lock, so concurrent
    /// registrations end with at most `max`.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] when the key is already registered.
    pub(crate) async fn create_device(
        &self,
        user: UserId,
        signature_key: &[u8],
        session: &SessionId,
        now: i64,
        max: u32,
    ) -> Result<Option<DeviceId>> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(LOCK_USER).bind(user.0).execute(&mut *tx).await?;
            let held: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE user_id = $1 AND retired_at IS NULL")
                    .bind(user.0)
                    .fetch_one(&mut *tx)
                    .await?;
            if held >= i64::from(max) {
                tx.rollback().await?;
                return Ok(None);
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO devices (user_id, signature_key, created_at, session_id, last_bound_at) \
                 VALUES ($1, $2, $3, $4, $3) RETURNING id",
            )
            .bind(user.0)
            .bind(signature_key)
            .bind(now)
            .bind(&session.0)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(DeviceId(id)))
        })
    }

    /// Records that a connection of `session` bound `device` (unless it was
    /// retired meanwhile): ending that session retires the device. Returns
    /// whether the device is still active.
    pub(crate) async fn note_bound(&self, device: DeviceId, session: &SessionId, now: i64) -> Result<bool> {
        let done = with_pool!(self, pool => sqlx::query(
            "UPDATE devices SET session_id = $2, last_bound_at = $3 WHERE id = $1 AND retired_at IS NULL",
        )
        .bind(device.0)
        .bind(&session.0)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// A device by id.
    pub(crate) async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>> {
        let row: Option<DeviceRow> = with_pool!(self, pool => sqlx::query_as(select_device!("WHERE d.id = $1"))
                .bind(id.0)
                .fetch_optional(pool)
                .await?);
        Ok(row.map(device_record))
    }

    /// The device registered with `signature_key`, if any.
    pub(crate) async fn device_by_key(&self, signature_key: &[u8]) -> Result<Option<DeviceRecord>> {
        let row: Option<DeviceRow> = with_pool!(self, pool => sqlx::query_as(select_device!("WHERE d.signature_key = $1"))
                .bind(signature_key)
                .fetch_optional(pool)
                .await?);
        Ok(row.map(device_record))
    }

    /// The ids of `user`'s devices that are not retired, oldest first: the
    /// devices a KeyPackage claim adds.
    pub(crate) async fn devices_of(&self, user: UserId) -> Result<Vec<DeviceId>> {
        let ids: Vec<i64> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM devices WHERE user_id = $1 AND retired_at IS NULL ORDER BY id",
        )
        .bind(user.0)
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(DeviceId).collect())
    }

    /// `user`'s devices that are not retired, oldest first, for their list
    /// as `session` sees it.
    pub(crate) async fn device_listing(
        &self,
        user: UserId,
        session: &SessionId,
    ) -> Result<Vec<DeviceListing>> {
        let rows: Vec<(i64, i64, i64, String, bool)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT d.id, d.created_at, COALESCE(d.last_bound_at, d.created_at), COALESCE(s.client, ''), \
                    COALESCE(d.session_id = $2, FALSE) \
             FROM devices d LEFT JOIN sessions s ON s.id = d.session_id \
             WHERE d.user_id = $1 AND d.retired_at IS NULL ORDER BY d.id",
        )
        .bind(user.0)
        .bind(&session.0)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(id, created_at, last_bound_at, client, this_session)| DeviceListing {
                id: DeviceId(id),
                created_at,
                last_bound_at,
                client,
                this_session,
            })
            .collect())
    }

    /// Stores one-time KeyPackages for `device` and, if given, replaces its
    /// last-resort package, unless the device would then hold more than
    /// `max_count` one-time packages or more than `max_bytes` of packages.
    /// Returns how many one-time packages the device then holds, or the quota
    /// that refused it (and stores nothing).
    pub(crate) async fn add_key_packages(
        &self,
        device: DeviceId,
        packages: &[Vec<u8>],
        last_resort: Option<&[u8]>,
        max_count: u32,
        max_bytes: u32,
    ) -> Result<Result<u32, Quota>> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Writing first takes the device's row lock (PostgreSQL) or the write
            // lock (SQLite) before anything is read, so concurrent uploads for
            // one device count one after the other.
            sqlx::query(LOCK_DEVICE).bind(device.0).execute(&mut *tx).await?;
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
            let (held, bytes): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM key_packages WHERE device_id = $1 AND NOT last_resort), \
                        (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM key_packages WHERE device_id = $1)",
            )
            .bind(device.0)
            .fetch_one(&mut *tx)
            .await?;
            let over = if held > i64::from(max_count) {
                Some(Quota::KeyPackages(max_count))
            } else if bytes > i64::from(max_bytes) {
                Some(Quota::KeyPackageBytes(max_bytes))
            } else {
                None
            };
            if let Some(quota) = over {
                tx.rollback().await?;
                return Ok(Err(quota));
            }
            tx.commit().await?;
            Ok(Ok(u32::try_from(held).unwrap_or(u32::MAX)))
        })
    }

    /// How many one-time KeyPackages `device` has left, and whether its
    /// last-resort package was handed out since it was uploaded.
    pub(crate) async fn key_package_status(&self, device: DeviceId) -> Result<(u32, bool)> {
        let (held, used): (i64, bool) = with_pool!(self, pool => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM key_packages WHERE device_id = $1 AND NOT last_resort), \
                    EXISTS (SELECT 1 FROM key_packages WHERE device_id = $1 AND last_resort AND handed_out)",
        )
        .bind(device.0)
        .fetch_one(pool)
        .await?);
        Ok((u32::try_from(held).unwrap_or(u32::MAX), used))
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

    /// Claims one KeyPackage of `device`: when `one_time`, the oldest one-time
    /// package, removed in the same statement that reads it; else (or when
    /// there is none) the last-resort package, kept and marked as handed out.
    /// `None` when the device has neither.
    pub(crate) async fn claim_key_package(
        &self,
        device: DeviceId,
        one_time: bool,
    ) -> Result<Option<Claimed>> {
        let attempts = if one_time { CLAIM_ATTEMPTS } else { 0 };
        for _ in 0..attempts {
            let taken: Option<Vec<u8>> = with_pool!(self, pool => sqlx::query_scalar(
                "DELETE FROM key_packages WHERE id = (\
                   SELECT id FROM key_packages WHERE device_id = $1 AND NOT last_resort ORDER BY id LIMIT 1\
                 ) RETURNING data",
            )
            .bind(device.0)
            .fetch_optional(pool)
            .await?);
            if let Some(data) = taken {
                return Ok(Some(Claimed { data, last_resort: false, first_use: false }));
            }
            if self.key_packages_left(device).await? == 0 {
                break;
            }
            // A concurrent claim took the package this one aimed at; try the next.
        }
        with_pool!(self, pool => {
            // Of concurrent claims, exactly one flips the mark: one notice per
            // uploaded package.
            let flipped: Option<Vec<u8>> = sqlx::query_scalar(
                "UPDATE key_packages SET handed_out = TRUE \
                 WHERE device_id = $1 AND last_resort AND NOT handed_out RETURNING data",
            )
            .bind(device.0)
            .fetch_optional(pool)
            .await?;
            if let Some(data) = flipped {
                return Ok(Some(Claimed { data, last_resort: true, first_use: true }));
            }
            let kept: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT data FROM key_packages WHERE device_id = $1 AND last_resort")
                    .bind(device.0)
                    .fetch_optional(pool)
                    .await?;
            Ok(kept.map(|data| Claimed { data, last_resort: true, first_use: false }))
        })
    }
}

/// Takes the account row's lock (PostgreSQL) or the write lock (SQLite) for
/// the rest of the transaction, changing nothing: what is counted next stays
/// counted until commit.
pub(super) const LOCK_USER: &str = "UPDATE users SET disabled = disabled WHERE id = $1";
/// The same for a device's row.
const LOCK_DEVICE: &str = "UPDATE devices SET created_at = created_at WHERE id = $1";

type DeviceRow = (i64, i64, String, Vec<u8>, Option<String>, bool);

fn device_record((id, user, username, signature_key, session, retired): DeviceRow) -> DeviceRecord {
    DeviceRecord {
        id: DeviceId(id),
        user: UserId(user),
        username,
        signature_key,
        session: session.map(SessionId),
        retired,
    }
}
