-- Players' wallets, the slot's spins, provably-fair seeds and responsible-
-- gambling limits. A Telegram player's wallet is the ledger account of kind
-- 'player_wallet' whose owner is the player's id in decimal ('42'); the
-- ledger's own constraint keeps it from ever going negative.

-- A player's demo credits come from the house as their own kind of transfer.
alter table ledger_transfers
    drop constraint ledger_transfers_kind_known,
    add constraint ledger_transfers_kind_known check (
        kind in ('contribution_pool', 'contribution_reserve', 'award', 'seed_from_reserve', 'seed_from_house',
                 'award_rollback', 'deposit', 'bet', 'win', 'demo_credit')
    );

create index ledger_transfers_debit on ledger_transfers (debit_account_id, id);
create index ledger_transfers_credit on ledger_transfers (credit_account_id, id);

-- Limits a player sets on themselves. Lowering a limit (or setting one) takes
-- effect at once; raising or removing one only after a cooling-off period,
-- held in the pending_* columns until then. Self-exclusion cannot be undone
-- early: the only change accepted while it runs is a longer one.
alter table players
    add column daily_loss_limit_micros bigint,
    add column daily_deposit_limit_micros bigint,
    add column pending_daily_loss_limit_micros bigint,
    add column pending_daily_deposit_limit_micros bigint,
    -- the pending values apply from this moment; null when nothing is pending
    add column pending_limits_from timestamptz,
    add column self_excluded_until timestamptz,
    -- the time of the last accepted spin, for the minimum interval
    add column last_spin_at timestamptz,
    -- velocity: the last interval between spins and how many in a row were
    -- within the tolerance of the one before
    add column last_spin_interval_ms bigint,
    add column steady_spins integer not null default 0,
    add constraint players_limits_positive check (
        coalesce(daily_loss_limit_micros, 1) > 0 and coalesce(daily_deposit_limit_micros, 1) > 0
        and coalesce(pending_daily_loss_limit_micros, 1) > 0 and coalesce(pending_daily_deposit_limit_micros, 1) > 0
    );

-- What a player bet, won and deposited on one UTC day: the daily limits are
-- checked against it without summing the day's spins.
create table player_days (
    player_id bigint not null,
    day date not null,
    spins bigint not null default 0,
    bets_micros bigint not null default 0,
    -- line wins and jackpot awards
    wins_micros bigint not null default 0,
    deposits_micros bigint not null default 0,
    constraint player_days_pkey primary key (player_id, day),
    constraint player_days_player_fkey foreign key (player_id) references players (id),
    constraint player_days_not_negative check (spins >= 0 and bets_micros >= 0 and wins_micros >= 0 and deposits_micros >= 0)
);

-- Spins that looked machine-like, for a person to review.
create table player_flags (
    id bigint generated always as identity,
    player_id bigint not null,
    reason text not null,
    detail jsonb not null,
    created_at timestamptz not null default now(),
    reviewed_at timestamptz,
    constraint player_flags_pkey primary key (id),
    constraint player_flags_player_fkey foreign key (player_id) references players (id),
    constraint player_flags_reason_known check (reason in ('steady_intervals'))
);

create index player_flags_open on player_flags (player_id) where reviewed_at is null;

-- Provably-fair seeds. A player has one active seed (revealed_at null); its
-- server seed stays secret, only its hash is shown, until the player rotates
-- it. next_nonce counts the spins made with it.
create table player_seeds (
    id bigint generated always as identity,
    player_id bigint not null,
    server_seed text not null,
    server_seed_hash text not null,
    client_seed text not null,
    next_nonce bigint not null default 0,
    created_at timestamptz not null default now(),
    revealed_at timestamptz,
    constraint player_seeds_pkey primary key (id),
    constraint player_seeds_player_fkey foreign key (player_id) references players (id),
    constraint player_seeds_server_seed_format check (server_seed ~ '^[0-9a-f]{64}$'),
    constraint player_seeds_hash_format check (server_seed_hash ~ '^[0-9a-f]{64}$'),
    constraint player_seeds_client_seed_format check (client_seed ~ '^[A-Za-z0-9_-]{1,64}$'),
    constraint player_seeds_nonce_not_negative check (next_nonce >= 0)
);

create unique index player_seeds_one_active on player_seeds (player_id) where revealed_at is null;
create index player_seeds_player on player_seeds (player_id, id);

-- Spins of the Mini App's slot. Each is written in the transaction that moved
-- its money; `receipt` is the answer the player got, returned again for a
-- retry with the same idempotency key.
create table spins (
    id bigint generated always as identity,
    player_id bigint not null,
    idempotency_key text not null,
    request_hash bytea not null,
    game_id text not null,
    currency text not null,
    bet_micros bigint not null,
    win_micros bigint not null,
    jackpot_win_micros bigint not null default 0,
    seed_id bigint not null,
    nonce bigint not null,
    stops integer[] not null,
    balance_after_micros bigint not null,
    receipt jsonb not null,
    created_at timestamptz not null default now(),
    constraint spins_pkey primary key (id),
    constraint spins_player_fkey foreign key (player_id) references players (id),
    constraint spins_seed_fkey foreign key (seed_id) references player_seeds (id),
    constraint spins_idempotency unique (player_id, idempotency_key),
    constraint spins_one_per_nonce unique (seed_id, nonce),
    constraint spins_amounts check (bet_micros > 0 and win_micros >= 0 and jackpot_win_micros >= 0
                                    and balance_after_micros >= 0)
);

create index spins_player on spins (player_id, id);
