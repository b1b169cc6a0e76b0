-- A device is retired when the session it was last used with ends (logout,
-- revocation) or when its owner removes it: it never binds again, its
-- KeyPackages and Welcomes are deleted, it no longer counts toward the device
-- quota, and a `device_left` entry in every room whose group it is in asks the
-- members to remove it with their next commit.
ALTER TABLE devices ADD COLUMN session_id TEXT;        -- the session it was last bound with
ALTER TABLE devices ADD COLUMN last_bound_at BIGINT;   -- Unix seconds
ALTER TABLE devices ADD COLUMN retired_at BIGINT;      -- Unix seconds
CREATE INDEX devices_by_session ON devices (session_id);

-- The log gains the kind `device_left`.
ALTER TABLE room_log DROP CONSTRAINT room_log_kind_check;
ALTER TABLE room_log ADD CONSTRAINT room_log_kind_check
    CHECK (kind IN ('message', 'commit', 'deleted', 'left', 'device_left'));
