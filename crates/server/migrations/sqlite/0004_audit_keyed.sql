-- The audit log's keyed chain: entries from the `audit_keyed` entry on are
-- linked by HMAC-SHA-256 under a key kept in a file outside the database
-- (audit_key_file), so that someone who can write to the database but lacks
-- the key cannot recompute the chain after changing it.
--
-- key_id identifies that key (an HMAC of a fixed text under it, which reveals
-- nothing of the key): a node started with another key file is refused
-- instead of writing entries no verifier could check. NULL until the log is
-- keyed, which the server does at its first start with this migration.
ALTER TABLE audit_head ADD COLUMN key_id BLOB;
