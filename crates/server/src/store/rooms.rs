//! Rooms, their members and the devices in their MLS groups: creation and reads.
//! Appends to a room's log (which also change membership) are in `log`.
//!
//! **Names.** The lobby and public rooms share one namespace: a name is one
//! room, which anyone may find. Each owner's private rooms have a namespace of
//! their own, so a name another owner chose for a private room is never
//! "taken" for anyone else, and creating a room reveals nothing about rooms one
//! cannot see. A bare name resolves among the rooms the viewer may see: the
//! rooms they are a member of first (their own before others', then the
//! oldest), and only then the public room of that name. So a room one is in
//! is never displaced by a public room created later under its name (which
//! would send what was meant for a private group to a public one), and one's
//! own rooms by nothing. `owner/name` names exactly one room.

use super::{Result, Store, StoreError, devices::LOCK_USER, with_pool};
use crate::policy::Membership;
use conclave_proto::{DeviceId, RoomId, RoomKind, Seq, UserId};
use sqlx::QueryBuilder;
use std::collections::HashSet;

/// A room as one user (the viewer) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomRecord {
    /// The room.
    pub id: RoomId,
    /// Stored name (for direct rooms a placeholder: show the other participant).
    pub name: String,
    /// Kind.
    pub kind: RoomKind,
    /// Owner's id and username (none for the lobby).
    pub owner: Option<(UserId, String)>,
    /// MLS group id.
    pub group_id: Vec<u8>,
    /// Current epoch; `None` until the group is created.
    pub epoch: Option<u64>,
    /// Newest log entry.
    pub last_seq: Seq,
    /// Direct rooms: both participants.
    pub participants: Option<[(UserId, String); 2]>,
    /// The viewer's standing.
    pub viewer: Membership,
}

/// A current member and the devices they have in the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberRecord {
    /// Username.
    pub username: String,
    /// Owns the room.
    pub owner: bool,
    /// Devices in the group.
    pub devices: Vec<DeviceId>,
}

/// The stored MLS group state handed to external joiners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupState {
    /// Current epoch; `None` until created.
    pub epoch: Option<u64>,
    /// Latest GroupInfo.
    pub group_info: Option<Vec<u8>>,
    /// Latest ratchet tree.
    pub ratchet_tree: Option<Vec<u8>>,
    /// The group's public MLS state, which commits are checked against; `None`
    /// until created, and for rooms created before the server kept it.
    pub public_group: Option<Vec<u8>>,
    /// The MLS group id.
    pub group_id: Vec<u8>,
}

/// What [`Store::create_room`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewRoom {
    /// The room was created.
    Created(RoomId),
    /// The name is taken where the new room would live: a public room (or the
    /// lobby) has it, or, for a private room, one of the owner's own.
    NameTaken,
    /// The owner already owns as many public and private rooms as allowed.
    AtQuota,
}

/// Most rooms `list_rooms` returns (the user's rooms come first).
pub(crate) const MAX_LISTED_ROOMS: i64 = 1000;

type RoomRow = (
    i64,
    String,
    String,
    Option<i64>,
    Option<String>,
    Vec<u8>,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// The room columns and the viewer's (`$1`) membership; callers add `WHERE`.
macro_rules! select_rooms {
    ($rest:literal) => {
        concat!(
            "SELECT r.id, r.name, r.kind, r.owner_id, o.username, r.group_id, r.epoch, r.last_seq, \
                    r.direct_low, a.username, r.direct_high, b.username, m.role, m.left_at \
             FROM rooms r \
             LEFT JOIN users o ON o.id = r.owner_id \
             LEFT JOIN users a ON a.id = r.direct_low \
             LEFT JOIN users b ON b.id = r.direct_high \
             LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $1 ",
            $rest
        )
    };
}

/// The stored name of a kind.
pub(crate) fn kind_name(kind: RoomKind) -> &'static str {
    match kind {
        RoomKind::Lobby => "lobby",
        RoomKind::Public => "public",
        RoomKind::Private => "private",
        RoomKind::Direct => "direct",
    }
}

pub(super) fn parse_kind(kind: &str) -> Result<RoomKind> {
    match kind {
        "lobby" => Ok(RoomKind::Lobby),
        "public" => Ok(RoomKind::Public),
        "private" => Ok(RoomKind::Private),
        "direct" => Ok(RoomKind::Direct),
        other => {
            Err(StoreError::Database(sqlx::Error::Decode(format!("unknown room kind {other:?}").into())))
        }
    }
}

/// A stored epoch (never negative) as the wire's `u64`.
pub(super) fn epoch_of(stored: Option<i64>) -> Option<u64> {
    stored.and_then(|e| u64::try_from(e).ok())
}

fn record(row: RoomRow) -> Result<RoomRecord> {
    let (
        id,
        name,
        kind,
        owner_id,
        owner_name,
        group_id,
        epoch,
        last_seq,
        low,
        low_name,
        high,
        high_name,
        role,
        left,
    ) = row;
    let participants = match (low, low_name, high, high_name) {
        (Some(low), Some(low_name), Some(high), Some(high_name)) => {
            Some([(UserId(low), low_name), (UserId(high), high_name)])
        }
        _ => None,
    };
    Ok(RoomRecord {
        id: RoomId(id),
        name,
        kind: parse_kind(&kind)?,
        owner: owner_id.zip(owner_name).map(|(id, name)| (UserId(id), name)),
        group_id,
        epoch: epoch_of(epoch),
        last_seq: Seq(last_seq),
        participants,
        viewer: Membership::from_row(role.as_deref().map(|role| (role, left.is_some()))),
    })
}

impl Store {
    /// Creates a public or private room owned by `owner`, who becomes its first
    /// member, unless its name is taken in its namespace (see the module
    /// documentation) or `owner` already owns `max_owned` public and private
    /// rooms. A public room may not take a name the owner's own private room
    /// has, nor a private room a public room's name, so neither would hide
    /// the other from its owner. The rooms are counted under the owner's row
    /// lock, so concurrent creations cannot pass the total together.
    ///
    /// # Errors
    /// Storage errors.
    pub(crate) async fn create_room(
        &self,
        name: &str,
        kind: RoomKind,
        owner: UserId,
        group_id: &[u8],
        now: i64,
        max_owned: u32,
    ) -> Result<NewRoom> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(LOCK_USER).bind(owner.0).execute(&mut *tx).await?;
            let owned: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM rooms WHERE owner_id = $1 AND kind IN ('public', 'private')",
            )
            .bind(owner.0)
            .fetch_one(&mut *tx)
            .await?;
            if owned >= i64::from(max_owned) {
                tx.rollback().await?;
                return Ok(NewRoom::AtQuota);
            }
            // The other namespace this owner sees the name in.
            let shadowed: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM rooms WHERE name = $1 AND \
                   (kind IN ('lobby', 'public') OR (kind = 'private' AND owner_id = $2)) LIMIT 1",
            )
            .bind(name)
            .bind(owner.0)
            .fetch_optional(&mut *tx)
            .await?;
            if shadowed.is_some() {
                tx.rollback().await?;
                return Ok(NewRoom::NameTaken);
            }
            let inserted = sqlx::query_scalar(
                "INSERT INTO rooms (name, kind, owner_id, group_id, created_at) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING id",
            )
            .bind(name)
            .bind(kind_name(kind))
            .bind(owner.0)
            .bind(group_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await;
            let id: i64 = match inserted.map_err(StoreError::from) {
                Ok(id) => id,
                // A concurrent creation took the name.
                Err(StoreError::Conflict) => return Ok(NewRoom::NameTaken),
                Err(err) => return Err(err),
            };
            sqlx::query(
                "INSERT INTO room_members (room_id, user_id, role, joined_seq) VALUES ($1, $2, 'owner', 1)",
            )
            .bind(id)
            .bind(owner.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(NewRoom::Created(RoomId(id)))
        })
    }

    /// Finds or creates the direct room of two users; both are members afterwards
    /// (a participant who had left is a member again). The creator owns it.
    /// Returns the room and whether it was created now.
    pub(crate) async fn open_direct(
        &self,
        opener: UserId,
        other: UserId,
        group_id: &[u8],
        now: i64,
    ) -> Result<(RoomId, bool)> {
        let (low, high) = if opener <= other { (opener, other) } else { (other, opener) };
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let created: Option<i64> = sqlx::query_scalar(
                "INSERT INTO rooms (name, kind, owner_id, group_id, direct_low, direct_high, created_at) \
                 VALUES ('', 'direct', $1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(opener.0)
            .bind(group_id)
            .bind(low.0)
            .bind(high.0)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let id = match created {
                Some(id) => {
                    for (user, role) in [(opener, "owner"), (other, "member")] {
                        sqlx::query(
                            "INSERT INTO room_members (room_id, user_id, role, joined_seq) VALUES ($1, $2, $3, 1)",
                        )
                        .bind(id)
                        .bind(user.0)
                        .bind(role)
                        .execute(&mut *tx)
                        .await?;
                    }
                    id
                }
                None => {
                    let id: i64 = sqlx::query_scalar(
                        "SELECT id FROM rooms WHERE kind = 'direct' AND direct_low = $1 AND direct_high = $2",
                    )
                    .bind(low.0)
                    .bind(high.0)
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE room_members SET left_at = NULL, \
                           joined_seq = (SELECT last_seq + 1 FROM rooms WHERE id = $1) \
                         WHERE room_id = $1 AND left_at IS NOT NULL",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            tx.commit().await?;
            Ok((RoomId(id), created.is_some()))
        })
    }

    /// A room by id, as `viewer` sees it.
    pub(crate) async fn room(&self, viewer: UserId, room: RoomId) -> Result<Option<RoomRecord>> {
        let row: Option<RoomRow> = with_pool!(self, pool => sqlx::query_as(select_rooms!("WHERE r.id = $2"))
            .bind(viewer.0)
            .bind(room.0)
            .fetch_optional(pool)
            .await?);
        row.map(record).transpose()
    }

    /// The room `name` means to `viewer`: among the lobby, the public rooms
    /// and the private rooms `viewer` is a member of, in the order the module
    /// documentation gives. Private rooms the viewer is not in are never found.
    pub(crate) async fn room_by_name(&self, viewer: UserId, name: &str) -> Result<Option<RoomRecord>> {
        let row: Option<RoomRow> = with_pool!(self, pool => sqlx::query_as(
            select_rooms!(
                "WHERE r.name = $2 AND r.kind <> 'direct' \
                   AND (r.kind IN ('lobby', 'public') OR (m.role IS NOT NULL AND m.left_at IS NULL)) \
                 ORDER BY CASE WHEN r.owner_id = $1 THEN 0 \
                               WHEN m.role IS NOT NULL AND m.left_at IS NULL THEN 1 ELSE 2 END, r.id \
                 LIMIT 1"
            ),
        )
        .bind(viewer.0)
        .bind(name)
        .fetch_optional(pool)
        .await?);
        row.map(record).transpose()
    }

    /// The room `owner` owns under `name`, if `viewer` may see it (a public
    /// room, or a private one they are a member of).
    pub(crate) async fn owned_room_by_name(
        &self,
        viewer: UserId,
        owner: UserId,
        name: &str,
    ) -> Result<Option<RoomRecord>> {
        let row: Option<RoomRow> = with_pool!(self, pool => sqlx::query_as(
            select_rooms!(
                "WHERE r.name = $2 AND r.owner_id = $3 \
                   AND (r.kind = 'public' OR (r.kind = 'private' AND m.role IS NOT NULL AND m.left_at IS NULL)) \
                 ORDER BY r.id LIMIT 1"
            ),
        )
        .bind(viewer.0)
        .bind(name)
        .bind(owner.0)
        .fetch_optional(pool)
        .await?);
        row.map(record).transpose()
    }

    /// The direct room of `viewer` and `other`, if it exists.
    pub(crate) async fn direct_room(&self, viewer: UserId, other: UserId) -> Result<Option<RoomRecord>> {
        let (low, high) = if viewer <= other { (viewer, other) } else { (other, viewer) };
        let row: Option<RoomRow> = with_pool!(self, pool => sqlx::query_as(
            select_rooms!("WHERE r.kind = 'direct' AND r.direct_low = $2 AND r.direct_high = $3"),
        )
        .bind(viewer.0)
        .bind(low.0)
        .bind(high.0)
        .fetch_optional(pool)
        .await?);
        row.map(record).transpose()
    }

    /// The rooms `viewer` is a member of, then the lobby and public rooms they
    /// are not in; at most [`MAX_LISTED_ROOMS`].
    pub(crate) async fn rooms_for(&self, viewer: UserId) -> Result<Vec<RoomRecord>> {
        let rows: Vec<RoomRow> = with_pool!(self, pool => sqlx::query_as(select_rooms!(
            "WHERE (m.role IS NOT NULL AND m.left_at IS NULL) OR r.kind IN ('lobby', 'public') \
             ORDER BY CASE WHEN m.role IS NOT NULL AND m.left_at IS NULL THEN 0 ELSE 1 END, r.id \
             LIMIT $2"
        ))
        .bind(viewer.0)
        .bind(MAX_LISTED_ROOMS)
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(record).collect()
    }

    /// Those of `others` who share a private or direct room with `user`, both
    /// current members: the people `user` talks with, as opposed to strangers
    /// (the lobby and public rooms, open to anyone, do not count).
    pub(crate) async fn contacts_among(&self, user: UserId, others: &[UserId]) -> Result<HashSet<UserId>> {
        if others.is_empty() {
            return Ok(HashSet::new());
        }
        let ids: Vec<i64> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(
                "SELECT DISTINCT b.user_id FROM room_members a \
                 JOIN room_members b ON b.room_id = a.room_id \
                 JOIN rooms r ON r.id = a.room_id \
                 WHERE a.left_at IS NULL AND b.left_at IS NULL AND r.kind IN ('private', 'direct') \
                   AND a.user_id = ",
            );
            query.push_bind(user.0).push(" AND b.user_id IN (");
            let mut list = query.separated(", ");
            for other in others {
                list.push_bind(other.0);
            }
            query.push(")");
            query.build_query_scalar().fetch_all(pool).await?
        });
        Ok(ids.into_iter().map(UserId).collect())
    }

    /// The rooms whose group `device` is in and whose member its user still is.
    pub(crate) async fn rooms_of_device(&self, device: DeviceId) -> Result<Vec<RoomId>> {
        let ids: Vec<i64> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT md.room_id FROM member_devices md \
             JOIN devices d ON d.id = md.device_id \
             JOIN room_members m ON m.room_id = md.room_id AND m.user_id = d.user_id \
             WHERE md.device_id = $1 AND m.left_at IS NULL ORDER BY md.room_id",
        )
        .bind(device.0)
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(RoomId).collect())
    }

    /// Where `device` joined the room's group, if it is in it.
    pub(crate) async fn device_joined(&self, room: RoomId, device: DeviceId) -> Result<Option<Seq>> {
        let seq: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT joined_seq FROM member_devices WHERE room_id = $1 AND device_id = $2",
        )
        .bind(room.0)
        .bind(device.0)
        .fetch_optional(pool)
        .await?);
        Ok(seq.map(Seq))
    }

    /// The room's current members with their devices in the group, by name.
    pub(crate) async fn members(&self, room: RoomId) -> Result<Vec<MemberRecord>> {
        type Members = Vec<(i64, String, String)>;
        type Devices = Vec<(i64, i64)>;
        let (members, devices): (Members, Devices) = with_pool!(self, pool => {
            let members = sqlx::query_as(
                "SELECT u.id, u.username, m.role FROM room_members m JOIN users u ON u.id = m.user_id \
                 WHERE m.room_id = $1 AND m.left_at IS NULL ORDER BY u.username",
            )
            .bind(room.0)
            .fetch_all(pool)
            .await?;
            let devices = sqlx::query_as(
                "SELECT d.user_id, md.device_id FROM member_devices md JOIN devices d ON d.id = md.device_id \
                 WHERE md.room_id = $1 ORDER BY md.device_id",
            )
            .bind(room.0)
            .fetch_all(pool)
            .await?;
            (members, devices)
        });
        let mut by_user: std::collections::HashMap<i64, Vec<DeviceId>> = std::collections::HashMap::new();
        for (user, device) in devices {
            by_user.entry(user).or_default().push(DeviceId(device));
        }
        Ok(members
            .into_iter()
            .map(|(id, username, role)| MemberRecord {
                username,
                owner: role == "owner",
                devices: by_user.remove(&id).unwrap_or_default(),
            })
            .collect())
    }

    /// The room's MLS group state, `None` if there is no such room.
    pub(crate) async fn group_state(&self, room: RoomId) -> Result<Option<GroupState>> {
        type Row = (Option<i64>, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>, Vec<u8>);
        let row: Option<Row> = with_pool!(self, pool => sqlx::query_as(
            "SELECT epoch, group_info, ratchet_tree, public_group, group_id FROM rooms WHERE id = $1",
        )
        .bind(room.0)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(epoch, group_info, ratchet_tree, public_group, group_id)| GroupState {
            epoch: epoch_of(epoch),
            group_info,
            ratchet_tree,
            public_group,
            group_id,
        }))
    }

    /// A user's id by lower-case username, if the account exists.
    pub(crate) async fn user_id(&self, username: &str) -> Result<Option<UserId>> {
        let id: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?);
        Ok(id.map(UserId))
    }

    /// Accounts that are not disabled, by username, at most `limit`.
    pub(crate) async fn usernames(&self, limit: i64) -> Result<Vec<(UserId, String)>> {
        let rows: Vec<(i64, String)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, username FROM users WHERE NOT disabled ORDER BY username LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(|(id, name)| (UserId(id), name)).collect())
    }
}
