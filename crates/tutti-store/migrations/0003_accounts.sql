-- Operator accounts and the credentials that act for them: browser sessions, MFA recovery
-- codes and API tokens.
--
-- The server hashes every secret before it reaches the store (passwords with argon2id;
-- session cookies, recovery codes and API tokens with sha256). The TOTP secret is the one
-- exception: checking a code needs the secret itself.
-- Roles are not CHECK-constrained, like target states: Role in tutti-proto is the
-- authority on which values exist.

-- People who sign in to the dashboard or the API.
CREATE TABLE accounts (
    username             TEXT PRIMARY KEY,
    -- argon2id PHC string made by the server.
    password_hash        TEXT NOT NULL,
    -- viewer, operator or admin.
    role                 TEXT NOT NULL,
    disabled             BOOLEAN NOT NULL DEFAULT 0,
    must_change_password BOOLEAN NOT NULL,
    -- Base32 TOTP secret; NULL while MFA is off.
    totp_secret          TEXT,
    -- A secret being enrolled, until the user confirms a code made from it.
    totp_pending         TEXT,
    created_at           BIGINT NOT NULL,
    created_by           TEXT NOT NULL,
    updated_at           BIGINT NOT NULL,
    password_changed_at  BIGINT NOT NULL
);

-- One-time MFA recovery codes (hashes only); a used code keeps its row with used_at set.
CREATE TABLE recovery_codes (
    username  TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (username, code_hash)
);

-- Browser sessions, keyed by the sha256 hex of the cookie value.
CREATE TABLE sessions (
    session_hash TEXT PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    -- Absolute end of the session; idle expiry is computed from last_seen_at.
    expires_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    -- Where the sign-in came from (client address, user agent), for the session list.
    source       TEXT,
    -- Whether the second factor was checked for this session.
    mfa_passed   BOOLEAN NOT NULL
);
CREATE INDEX sessions_username ON sessions (username);

-- Long-lived API tokens (hashes only), each acting for its owner with at most its role.
-- Names may repeat: they are labels, the id is the key.
CREATE TABLE api_tokens (
    token_id     TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    username     TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    -- NULL: never expires.
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_username ON api_tokens (username, created_at);
