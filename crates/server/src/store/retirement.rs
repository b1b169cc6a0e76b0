//! Retiring devices: when the session a device was last bound with ends
//! (logout, revocation) or its owner removes it, the device may never bind
//! again and must leave every group it is in.
//!
//! Two steps, because the second one appends to room logs, whose entries are
//! published under each room's fan-out turn: [`Store::retire_devices`] marks
//! the devices and deletes their KeyPackages and Welcomes (after that no
//! commit may add them: the policy refuses retired devices), so the set of
//! groups they are in can only shrink; [`Store::announce_device_left`] then
//! appends one `device_left` entry per room whose group still holds the
//! device, asking its members to remove it with their next commit.

use super::{
    Result, Store,
    log::{LOCK_ROOM, LockRow},
    with_pool,
};
use conclave_proto::{DeviceId, RoomId, Seq, SessionId, UserId};

/// Which of a user's devices to retire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Retiring<'a> {
    /// Every device last bound with this session.
    BoundWith(&'a SessionId),
    /// This device.
    Device(DeviceId),
}

impl Store {
    /// Retires `user`'s devices that `which` names and are not retired yet;
    /// returns them. Their KeyPackages and pending Welcomes are deleted in the
    /// same transaction.
    pub(crate) async fn retire_devices(
        &self,
        user: UserId,
        which: Retiring<'_>,
        now: i64,
    ) -> Result<Vec<DeviceId>> {
        let (device, session) = match which {
            Retiring::BoundWith(session) => (None, Some(session.0.clone())),
            Retiring::Device(device) => (Some(device.0), None),
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let ids: Vec<i64> = sqlx::query_scalar(
                "UPDATE devices SET retired_at = $4 \
                 WHERE user_id = $1 AND retired_at IS NULL \
                   AND (id = $2 OR session_id = $3) \
                 RETURNING id",
            )
            .bind(user.0)
            .bind(device)
            .bind(session)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            for id in &ids {
                for statement in [
                    "DELETE FROM key_packages WHERE device_id = $1",
                    "DELETE FROM welcomes WHERE device_id = $1",
                ] {
                    sqlx::query(statement).bind(id).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            let mut ids: Vec<DeviceId> = ids.into_iter().map(DeviceId).collect();
            ids.sort_unstable();
            Ok(ids)
        })
    }

    /// The rooms whose group holds `device`, whatever its user's membership.
    pub(crate) async fn groups_holding(&self, device: DeviceId) -> Result<Vec<RoomId>> {
        let ids: Vec<i64> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT room_id FROM member_devices WHERE device_id = $1 ORDER BY room_id",
        )
        .bind(device.0)
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(RoomId).collect())
    }

    /// Appends a `device_left` entry for the retired `device` (of `user`) to
    /// each of `rooms` whose group still holds it, under the room's lock;
    /// returns the rooms and seqs appended.
    pub(crate) async fn announce_device_left(
        &self,
        user: UserId,
        device: DeviceId,
        rooms: &[RoomId],
        at_ms: i64,
    ) -> Result<Vec<(RoomId, Seq)>> {
        let mut appended = Vec::with_capacity(rooms.len());
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for room in rooms {
                let held: Option<i64> = sqlx::query_scalar(
                    "SELECT joined_seq FROM member_devices WHERE room_id = $1 AND device_id = $2",
                )
                .bind(room.0)
                .bind(device.0)
                .fetch_optional(&mut *tx)
                .await?;
                if held.is_none() {
                    continue;
                }
                let Some((seq, ..)) =
                    sqlx::query_as::<_, LockRow>(LOCK_ROOM).bind(room.0).fetch_optional(&mut *tx).await?
                else {
                    continue;
                };
                sqlx::query(
                    "INSERT INTO room_log (room_id, seq, kind, sender_id, device_id, at_ms) \
                     VALUES ($1, $2, 'device_left', $3, $4, $5)",
                )
                .bind(room.0)
                .bind(seq)
                .bind(user.0)
                .bind(device.0)
                .bind(at_ms)
                .execute(&mut *tx)
                .await?;
                appended.push((*room, Seq(seq)));
            }
            tx.commit().await?;
        });
        Ok(appended)
    }
}
