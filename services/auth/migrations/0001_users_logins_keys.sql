-- Users, their logins (a login is one token family: the refresh tokens chained by rotation and
-- the access tokens issued along the way share its id, the `sid` claim), and the signing keys.

CREATE TABLE user_account (
    id bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT user_account_pk PRIMARY KEY,
    username text NOT NULL CONSTRAINT user_account_username_uq UNIQUE,
    password_hash text NOT NULL,
    roles text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_account_username_format CHECK (username ~ '^[a-z0-9_.-]{3,32}$')
);

CREATE TABLE login_session (
    id uuid CONSTRAINT login_session_pk PRIMARY KEY,
    user_id bigint NOT NULL
        CONSTRAINT login_session_user_fk REFERENCES user_account (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The expiry of its newest refresh token: after it, the login is over and can be deleted.
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);

CREATE INDEX login_session_user_ix ON login_session (user_id);
CREATE INDEX login_session_expires_ix ON login_session (expires_at);

-- Only a hash of each refresh token is kept: the tokens are 256 random bits, so a plain SHA-256
-- is enough (no password-style stretching), and a database leak yields nothing usable.
CREATE TABLE refresh_token (
    token_hash bytea CONSTRAINT refresh_token_pk PRIMARY KEY,
    session_id uuid NOT NULL
        CONSTRAINT refresh_token_session_fk REFERENCES login_session (id) ON DELETE CASCADE,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    -- Set when the token is exchanged for a new pair; presenting it again is reuse.
    used_at timestamptz,
    CONSTRAINT refresh_token_hash_length CHECK (octet_length(token_hash) = 32)
);

CREATE INDEX refresh_token_session_ix ON refresh_token (session_id);

-- Ed25519 signing keys. A key signs from `activates_at` on (the newest activated key signs);
-- it is published until `expires_at` (NULL: the newest key, not yet replaced).
CREATE TABLE signing_key (
    kid text CONSTRAINT signing_key_pk PRIMARY KEY,
    algorithm text NOT NULL DEFAULT 'Ed25519',
    public_jwk jsonb NOT NULL,
    -- The private JWK, encrypted with a key derived from AUTH_SECRET_KEY.
    private_key_encrypted bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    activates_at timestamptz NOT NULL,
    expires_at timestamptz,
    CONSTRAINT signing_key_algorithm CHECK (algorithm = 'Ed25519')
);

-- At most one key is the newest: two instances starting on a fresh database cannot both add one.
CREATE UNIQUE INDEX signing_key_one_newest_uq ON signing_key ((true)) WHERE expires_at IS NULL;
