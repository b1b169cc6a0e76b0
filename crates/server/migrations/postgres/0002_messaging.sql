-- Messaging: devices and their KeyPackages, rooms (each one MLS group), members,
-- each room's totally ordered log, and pending Welcomes. The server stores MLS
-- messages as opaque bytes; it never decrypts them.
-- Times are Unix seconds unless a column says otherwise.

-- A device is one client home of a user: one leaf in every group it is in.
CREATE TABLE devices (
    id             BIGSERIAL PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    signature_key  BYTEA  NOT NULL UNIQUE,         -- MLS signature public key, bound to the user here
    created_at     BIGINT NOT NULL
);
CREATE INDEX devices_by_user ON devices (user_id);

-- One-time KeyPackages are deleted when claimed; the one last-resort package
-- per device is handed out (and kept) only when no one-time package is left.
CREATE TABLE key_packages (
    id           BIGSERIAL PRIMARY KEY,
    device_id    BIGINT  NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    data         BYTEA   NOT NULL,
    last_resort  BOOLEAN NOT NULL
);
CREATE INDEX key_packages_by_device ON key_packages (device_id, last_resort, id);
CREATE UNIQUE INDEX key_packages_one_last_resort ON key_packages (device_id) WHERE last_resort;

CREATE TABLE rooms (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT   NOT NULL,                 -- unique among non-direct rooms
    kind          TEXT   NOT NULL CHECK (kind IN ('lobby', 'public', 'private', 'direct')),
    owner_id      BIGINT REFERENCES users (id),    -- none for the lobby
    group_id      BYTEA  NOT NULL UNIQUE,          -- MLS group id: 16 random bytes
    epoch         BIGINT,                          -- NULL until the group is created
    group_info    BYTEA,                           -- latest GroupInfo, for external joins
    ratchet_tree  BYTEA,                           -- latest ratchet tree
    last_seq      BIGINT NOT NULL DEFAULT 0,       -- newest log entry; bumped first by every append
    direct_low    BIGINT REFERENCES users (id),    -- direct rooms: the participants, ordered
    direct_high   BIGINT REFERENCES users (id),
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX rooms_by_name ON rooms (name) WHERE kind <> 'direct';
CREATE UNIQUE INDEX rooms_direct_pair ON rooms (direct_low, direct_high) WHERE kind = 'direct';

INSERT INTO rooms (name, kind, group_id, created_at)
VALUES ('lobby', 'lobby', decode(replace(gen_random_uuid()::text, '-', ''), 'hex'), EXTRACT(EPOCH FROM now())::BIGINT);

-- Users in a room. A row with left_at set is a former member (left or removed).
CREATE TABLE room_members (
    room_id     BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT   NOT NULL CHECK (role IN ('owner', 'member')),
    joined_seq  BIGINT NOT NULL,                   -- first log entry of this membership
    left_at     BIGINT,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_by_user ON room_members (user_id);

-- Devices that are leaves of the room's MLS group, and where each joined.
CREATE TABLE member_devices (
    room_id     BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    device_id   BIGINT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    joined_seq  BIGINT NOT NULL,                   -- the device reads the log from here on
    PRIMARY KEY (room_id, device_id)
);
CREATE INDEX member_devices_by_device ON member_devices (device_id);

-- Each room's log: gap-free seq numbers, assigned in the transaction that
-- stores the entry.
CREATE TABLE room_log (
    room_id            BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq                BIGINT NOT NULL,
    kind               TEXT   NOT NULL CHECK (kind IN ('message', 'commit', 'deleted', 'left')),
    sender_id          BIGINT NOT NULL REFERENCES users (id),
    device_id          BIGINT NOT NULL REFERENCES devices (id),
    message_id         BIGINT UNIQUE,              -- messages only
    epoch              BIGINT,                     -- commits: the epoch made in; messages: the room's epoch then
    change             TEXT,                       -- commits: the declared change (JSON)
    data               BYTEA,                      -- ciphertext or commit; erased when a message is deleted
    target_message_id  BIGINT,                     -- deletions: the deleted message
    nonce              BIGINT,                     -- messages: the sender's idempotency nonce
    at_ms              BIGINT NOT NULL,            -- Unix milliseconds
    PRIMARY KEY (room_id, seq)
);
CREATE UNIQUE INDEX room_log_nonce ON room_log (device_id, nonce) WHERE nonce IS NOT NULL;

-- Welcomes waiting for a device, stored with the commit that adds it (so they
-- exist only if that commit won its epoch). Dropped once the device acts in the
-- room, or after 30 days.
CREATE TABLE welcomes (
    id            BIGSERIAL PRIMARY KEY,
    device_id     BIGINT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    room_id       BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,                 -- the commit that added the device
    data          BYTEA  NOT NULL,
    ratchet_tree  BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX welcomes_by_device ON welcomes (device_id, room_id);
CREATE INDEX welcomes_by_age ON welcomes (created_at);
