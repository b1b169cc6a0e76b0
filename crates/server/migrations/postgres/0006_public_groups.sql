-- The public MLS state of each room's group (ratchet tree, group context,
-- transcript hash, confirmation tag: no secret), which the server checks every
-- commit against. NULL until the group is created; rooms created before this
-- column existed get it from their stored GroupInfo and tree at the next commit.
ALTER TABLE rooms ADD COLUMN public_group BYTEA;
