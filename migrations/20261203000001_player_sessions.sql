-- Issue 14, item 9: each Telegram launch signs in once, and a session renews
-- by refresh token instead of by replaying the launch's initData.

-- A player's session: what a refresh token renews. Renewal moves the
-- generation on; a spent token (an older generation) presented again ends the
-- session, whoever holds it.
create table player_sessions (
    id bigserial primary key,
    player_id bigint not null references players (id),
    -- How many times the session was renewed: a refresh token names the
    -- generation it was issued for, and only the current one renews.
    generation bigint not null default 0 check (generation >= 0),
    created_at timestamptz not null default now(),
    refreshed_at timestamptz not null default now(),
    -- Renewal pushes this out by auth.refresh_ttl_s, never past expires_at.
    idle_expires_at timestamptz not null,
    -- created_at + auth.session_max_age_s: then Telegram must sign in again.
    expires_at timestamptz not null,
    revoked_at timestamptz,
    revoked_reason text check (revoked_reason in ('signed_out', 'refresh_token_reused')),
    check ((revoked_at is null) = (revoked_reason is null)),
    check (idle_expires_at <= expires_at)
);

create index player_sessions_by_player on player_sessions (player_id, created_at);

-- Every sign-in, by the launch's initData `hash` (HMAC-SHA-256 over its
-- canonical data-check string, so re-encoding the same fields gives the same
-- hash): a second sign-in with one launch is refused (`init_data_used`) on
-- every instance. Kept as the players' sign-in log.
create table player_sign_ins (
    init_data_hash bytea primary key check (length(init_data_hash) = 32),
    player_id bigint not null references players (id),
    session_id bigint not null references player_sessions (id),
    auth_date timestamptz not null,
    signed_in_at timestamptz not null default now()
);

create index player_sign_ins_by_player on player_sign_ins (player_id, signed_in_at);
