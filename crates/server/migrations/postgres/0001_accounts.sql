-- Accounts, second factors, sessions and the hash-chained audit log.
-- Times are Unix seconds unless a column says otherwise.

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,      -- lower case: usernames are case-insensitive
    password_hash   TEXT    NOT NULL,             -- argon2id PHC string (salt inside)
    totp_secret     BYTEA   NOT NULL,             -- encrypted at rest (nonce || ciphertext)
    totp_last_step  BIGINT  NOT NULL,             -- last accepted TOTP step; older or equal is replay
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT  NOT NULL
);

-- Consecutive failed logins per attempted username, known or not: unknown
-- usernames go through the same reads and writes as real ones, so neither the
-- response time nor the back-off tells whether an account exists. A row is
-- deleted on success and pruned a day after its last failure.
CREATE TABLE login_failures (
    username         TEXT   PRIMARY KEY,
    failures         BIGINT NOT NULL,
    locked_until     BIGINT NOT NULL DEFAULT 0,   -- back-off end; 0 when none
    last_failure_at  BIGINT NOT NULL
);

CREATE TABLE recovery_codes (
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   BYTEA  NOT NULL,                  -- SHA-256 of the normalised 80-bit code
    used_at     BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE sessions (
    id            TEXT   PRIMARY KEY,             -- public id, not a credential
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    BYTEA  NOT NULL UNIQUE,         -- SHA-256 of the 256-bit token
    client        TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,                -- absolute timeout
    ended_at      BIGINT                          -- logout or revocation
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,                -- 1, 2, 3 … without gaps
    at_ms      BIGINT NOT NULL,                   -- Unix milliseconds
    actor      TEXT,                              -- username, when known
    action     TEXT   NOT NULL,
    detail     TEXT   NOT NULL,                   -- JSON metadata; never secrets or content
    prev_hash  BYTEA  NOT NULL,
    hash       BYTEA  NOT NULL                    -- SHA-256 over prev_hash and this row
);

-- The chain head: one row, locked by every append so appends from several
-- connections (or nodes) serialize.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  BYTEA  NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));
