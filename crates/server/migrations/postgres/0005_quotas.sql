-- Per-account bounds and private room names.

-- Room names: the lobby and public rooms share one namespace (anyone can find
-- them), and each owner's private rooms have their own, so creating a room
-- never tells anyone that someone else's private room of that name exists.
DROP INDEX rooms_by_name;
CREATE UNIQUE INDEX rooms_public_name ON rooms (name) WHERE kind IN ('lobby', 'public');
CREATE UNIQUE INDEX rooms_private_name ON rooms (owner_id, name) WHERE kind = 'private';
-- Counting the rooms an account owns (its quota).
CREATE INDEX rooms_by_owner ON rooms (owner_id);

-- Whether the device's last-resort KeyPackage was handed out since it was
-- uploaded: its owner's clients are told so, and upload a fresh one.
ALTER TABLE key_packages ADD COLUMN handed_out BOOLEAN NOT NULL DEFAULT FALSE;
