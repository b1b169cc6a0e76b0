//! Operator repairs of a room's MLS group (`conclave admin repair-room`), and the
//! adoption of group state stored before the server checked commits.
//!
//! A room whose stored group state nobody can follow any more (stored by a server
//! that did not check commits, or broken by a member's commit whose encrypted
//! parts only members could check) is reset: it gets a new MLS group id and no
//! group, and no device is in it. Membership is kept. The first member to act
//! creates the new group and the others join it by external commit, as clients
//! do when they find a room's group id changed. The log keeps its entries and its
//! sequence, so nothing already delivered is renumbered.

use super::{Result, Store, with_pool};
use conclave_proto::{RoomId, RoomKind};

/// A room an operator may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    /// The room.
    pub id: RoomId,
    /// Its stored name (a placeholder for direct rooms).
    pub name: String,
    /// Its kind.
    pub kind: RoomKind,
    /// Its current epoch; `None` when it has no group.
    pub epoch: Option<u64>,
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReset {
    /// The room as it was.
    pub room: RoomSummary,
    /// How many devices were taken out of the group.
    pub devices_removed: u64,
    /// How many pending Welcomes were dropped.
    pub welcomes_dropped: u64,
}

type SummaryRow = (i64, String, String, Option<i64>);

fn summary((id, name, kind, epoch): SummaryRow) -> Result<RoomSummary> {
    Ok(RoomSummary {
        id: RoomId(id),
        name,
        kind: super::rooms::parse_kind(&kind)?,
        epoch: epoch.and_then(|e| u64::try_from(e).ok()),
    })
}

impl Store {
    /// The rooms `name_or_id` names: the room with that numeric id, or the rooms
    /// of that name (a leading `#` is ignored; direct rooms have no name).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn rooms_named(&self, name_or_id: &str) -> Result<Vec<RoomSummary>> {
        let name = name_or_id.strip_prefix('#').unwrap_or(name_or_id);
        let id: i64 = name.parse().unwrap_or(-1);
        let rows: Vec<SummaryRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, kind, epoch FROM rooms WHERE id = $1 OR (name = $2 AND kind <> 'direct') ORDER BY id",
        )
        .bind(id)
        .bind(name)
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(summary).collect()
    }

    /// Keeps the public state verified from the GroupInfo and tree of a room
    /// whose group was created before the server kept it, if the room is still
    /// at `epoch` and has none (a commit may have moved it on meanwhile).
    ///
    /// # Errors
    /// Storage errors.
    pub(crate) async fn keep_public_group(&self, room: RoomId, epoch: u64, state: &[u8]) -> Result<()> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        with_pool!(self, pool => sqlx::query(
            "UPDATE rooms SET public_group = $3 WHERE id = $1 AND epoch = $2 AND public_group IS NULL",
        )
        .bind(room.0)
        .bind(epoch)
        .bind(state)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Resets the room's group under the new MLS `group_id`: no epoch, no stored
    /// GroupInfo, tree or public state, no device in the group, no pending
    /// Welcome. One transaction; `None` if there is no such room.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn reset_group(&self, room: RoomId, group_id: &[u8]) -> Result<Option<GroupReset>> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Taking the room's row lock first, as every append does.
            let row: Option<SummaryRow> = sqlx::query_as(
                "UPDATE rooms SET last_seq = last_seq WHERE id = $1 RETURNING id, name, kind, epoch",
            )
            .bind(room.0)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(None);
            };
            sqlx::query(
                "UPDATE rooms SET group_id = $2, epoch = NULL, group_info = NULL, ratchet_tree = NULL, \
                 public_group = NULL WHERE id = $1",
            )
            .bind(room.0)
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
            let devices = sqlx::query("DELETE FROM member_devices WHERE room_id = $1")
                .bind(room.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let welcomes = sqlx::query("DELETE FROM welcomes WHERE room_id = $1")
                .bind(room.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(Some(GroupReset { room: summary(row)?, devices_removed: devices, welcomes_dropped: welcomes }))
        })
    }
}
