-- A device is retired when the session it was last used with ends (logout,
-- revocation) or when its owner removes it: it never binds again, its
-- KeyPackages and Welcomes are deleted, it no longer counts toward the device
-- quota, and a `device_left` entry in every room whose group it is in asks the
-- members to remove it with their next commit.
ALTER TABLE devices ADD COLUMN session_id TEXT;        -- the session it was last bound with
ALTER TABLE devices ADD COLUMN last_bound_at BIGINT;   -- Unix seconds
ALTER TABLE devices ADD COLUMN retired_at BIGINT;      -- Unix seconds
CREATE INDEX devices_by_session ON devices (session_id);

-- The log gains the kind `device_left`. SQLite cannot change a CHECK
-- constraint, so the table is rebuilt (nothing references it).
CREATE TABLE room_log_new (
    room_id            BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq                BIGINT NOT NULL,
    kind               TEXT   NOT NULL CHECK (kind IN ('message', 'commit', 'deleted', 'left', 'device_left')),
    sender_id          BIGINT NOT NULL REFERENCES users (id),
    device_id          BIGINT NOT NULL REFERENCES devices (id),
    message_id         BIGINT UNIQUE,              -- messages only
    epoch              BIGINT,                     -- commits: the epoch made in; messages: the room's epoch then
    change             TEXT,                       -- commits: the declared change (JSON)
    data               BLOB,                       -- ciphertext or commit; erased when a message is deleted
    target_message_id  BIGINT,                     -- deletions: the deleted message
    nonce              BIGINT,                     -- messages: the sender's idempotency nonce
    at_ms              BIGINT NOT NULL,            -- Unix milliseconds
    PRIMARY KEY (room_id, seq)
);
INSERT INTO room_log_new (room_id, seq, kind, sender_id, device_id, message_id, epoch, change, data,
                          target_message_id, nonce, at_ms)
    SELECT room_id, seq, kind, sender_id, device_id, message_id, epoch, change, data,
           target_message_id, nonce, at_ms
    FROM room_log;
DROP TABLE room_log;
ALTER TABLE room_log_new RENAME TO room_log;
CREATE UNIQUE INDEX room_log_nonce ON room_log (device_id, nonce) WHERE nonce IS NOT NULL;
