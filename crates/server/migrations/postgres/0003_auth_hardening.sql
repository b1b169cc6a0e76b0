-- Authentication hardening: device cookies, hourly caps on counted login
-- failures, registration tokens, and NFC-normalised password hashes.
-- Times are Unix seconds.

-- Hashes made before this migration are of the password exactly as sent. A
-- login checks such a hash against the password as sent and, when it matches,
-- replaces it with a hash of the NFC form and sets this flag.
ALTER TABLE users ADD COLUMN password_nfc BOOLEAN NOT NULL DEFAULT FALSE;

-- Failed logins in the last hour per attempted username, as a JSON array of
-- Unix seconds: from untrusted clients (no valid device cookie), and from the
-- account's known devices together. Each list holds at most
-- `login_failures_per_hour` entries.
ALTER TABLE login_failures ADD COLUMN recent_failures TEXT NOT NULL DEFAULT '[]';
ALTER TABLE login_failures ADD COLUMN device_recent_failures TEXT NOT NULL DEFAULT '[]';

-- A device cookie marks a client home that logged in as the user before. A
-- login presenting a valid one is judged on the cookie's own failure count and
-- back-off, not on the account's untrusted one. Rotated at each login; deleted
-- when the session it was issued with is revoked, when it expires, and beyond
-- the newest 32 per user.
CREATE TABLE device_cookies (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    cookie_hash   BYTEA  NOT NULL UNIQUE,         -- SHA-256 of the 256-bit cookie
    session_id    TEXT   NOT NULL,                -- the session of the login that issued it
    failures      BIGINT NOT NULL DEFAULT 0,      -- consecutive failures with this cookie
    locked_until  BIGINT NOT NULL DEFAULT 0,      -- this cookie's back-off end; 0 when none
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX device_cookies_by_user ON device_cookies (user_id, issued_at);
CREATE INDEX device_cookies_by_session ON device_cookies (session_id);

-- Registration tokens for `registration = "invite"`. A token is `<id>-<secret>`;
-- only the secret's SHA-256 is kept.
CREATE TABLE registration_tokens (
    id           TEXT   PRIMARY KEY,              -- public id: 12 hex digits
    secret_hash  BYTEA  NOT NULL,                 -- SHA-256 of the 128-bit secret
    max_uses     BIGINT NOT NULL,
    uses         BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
