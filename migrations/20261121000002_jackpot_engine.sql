-- The jackpot engine: the double-entry ledger, contributions, awards and the
-- claims that asked for them, and the fairness data of each cycle.
-- Amounts are bigint micro-units, as in the first migration.

-- Ledger ---------------------------------------------------------------------

-- An account's balance is the sum of what was credited to it minus what was
-- debited; every transfer debits one account and credits another by the same
-- amount, so the balances of all accounts always sum to zero.
create table ledger_accounts (
    id bigint generated always as identity,
    kind text not null,
    -- the player, jackpot or game the account belongs to; '' for the house
    owner text not null,
    currency text not null,
    balance_micros bigint not null default 0,
    created_at timestamptz not null default now(),
    constraint ledger_accounts_pkey primary key (id),
    constraint ledger_accounts_identity unique (kind, owner, currency),
    constraint ledger_accounts_kind_known check (
        kind in ('player_wallet', 'jackpot_pool', 'jackpot_reserve', 'house', 'deposits_clearing', 'game_clearing')
    ),
    constraint ledger_accounts_currency_format check (currency ~ '^[A-Z]{3}$'),
    -- the database, not only the code, keeps wallets from going negative
    constraint ledger_accounts_wallet_not_negative check (kind <> 'player_wallet' or balance_micros >= 0),
    -- a pool pays out what it holds and never more
    constraint ledger_accounts_pool_not_negative check (kind <> 'jackpot_pool' or balance_micros >= 0)
);

create table ledger_transfers (
    id bigint generated always as identity,
    debit_account_id bigint not null,
    credit_account_id bigint not null,
    amount_micros bigint not null,
    kind text not null,
    -- what caused it: 'batch:<id>', 'award:<id>', ...
    reference text not null,
    created_at timestamptz not null default now(),
    constraint ledger_transfers_pkey primary key (id),
    constraint ledger_transfers_debit_fkey foreign key (debit_account_id) references ledger_accounts (id),
    constraint ledger_transfers_credit_fkey foreign key (credit_account_id) references ledger_accounts (id),
    constraint ledger_transfers_two_accounts check (debit_account_id <> credit_account_id),
    constraint ledger_transfers_amount_positive check (amount_micros > 0),
    constraint ledger_transfers_kind_known check (
        kind in ('contribution_pool', 'contribution_reserve', 'award', 'seed_from_reserve', 'seed_from_house',
                 'award_rollback', 'deposit', 'bet', 'win')
    )
);

create index ledger_transfers_reference on ledger_transfers (reference);

-- Which games feed a jackpot. A local jackpot has exactly one game, a shared
-- jackpot a set; a mega jackpot takes every game and has no rows here.
create table jackpot_games (
    jackpot_id text not null,
    game_id text not null,
    constraint jackpot_games_pkey primary key (jackpot_id, game_id),
    constraint jackpot_games_jackpot_fkey foreign key (jackpot_id) references jackpots (id),
    constraint jackpot_games_id_format check (game_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$')
);

-- Cycles: fairness and funding -------------------------------------------------

alter table jackpot_cycles
    -- must-drop only: the secret drop point and salt (revealed in the API once
    -- the cycle is awarded) and the commitment published from the start
    add column drop_point_micros bigint,
    add column salt text,
    add column commitment text,
    add column seed_from_reserve_micros bigint not null default 0,
    add column seed_from_house_micros bigint not null default 0,
    -- meters, updated with every batch of contributions
    add column bets_count bigint not null default 0,
    add column bets_micros bigint not null default 0,
    add column contributions_micros bigint not null default 0,
    add column pool_shares_micros bigint not null default 0,
    add column reserve_shares_micros bigint not null default 0,
    add constraint jackpot_cycles_fairness_complete check (
        (drop_point_micros is null and salt is null and commitment is null)
        or (drop_point_micros is not null and salt ~ '^[0-9a-f]{64}$' and commitment ~ '^[0-9a-f]{64}$')
    ),
    add constraint jackpot_cycles_drop_point_from_seed check (drop_point_micros is null or drop_point_micros >= seed_micros),
    add constraint jackpot_cycles_seed_funded check (seed_from_reserve_micros + seed_from_house_micros = seed_micros);

-- Contributions ----------------------------------------------------------------

create table jackpot_contributions (
    id bigint generated always as identity,
    jackpot_id text not null,
    cycle_number bigint not null,
    game_id text not null,
    player_id text not null,
    idempotency_key text not null,
    -- SHA-256 of the request as received: the same key with another body is refused
    request_hash bytea not null,
    bet_amount_micros bigint not null,
    -- the contribution: pool share + reserve share
    amount_micros bigint not null,
    pool_share_micros bigint not null,
    reserve_share_micros bigint not null,
    -- the part of the pool share past the maximum, moved to the reserve
    overflow_micros bigint not null default 0,
    value_after_micros bigint not null,
    -- the group commit that wrote it; its ledger transfers carry 'batch:<id>'
    batch_id bigint not null,
    created_at timestamptz not null default now(),
    constraint jackpot_contributions_pkey primary key (id),
    constraint jackpot_contributions_cycle_fkey foreign key (jackpot_id, cycle_number)
        references jackpot_cycles (jackpot_id, cycle_number),
    constraint jackpot_contributions_idempotency unique (jackpot_id, idempotency_key),
    constraint jackpot_contributions_bet_positive check (bet_amount_micros > 0),
    constraint jackpot_contributions_split check (
        amount_micros = pool_share_micros + reserve_share_micros
        and pool_share_micros >= 0 and reserve_share_micros >= 0
        and overflow_micros between 0 and pool_share_micros
    )
);

create index jackpot_contributions_cycle on jackpot_contributions (jackpot_id, cycle_number);
create sequence jackpot_contribution_batches;

-- Awards and the claims that asked for them ---------------------------------------

create table jackpot_awards (
    id bigint generated always as identity,
    jackpot_id text not null,
    cycle_number bigint not null,
    player_id text not null,
    session_id text,
    -- the pool's value locked in at the moment of the win
    awarded_amount_micros bigint not null,
    trigger_mode text not null,
    -- must-drop: the contribution that carried the pool past its drop point
    contribution_id bigint,
    status text not null default 'paid',
    created_at timestamptz not null default now(),
    constraint jackpot_awards_pkey primary key (id),
    constraint jackpot_awards_cycle_fkey foreign key (jackpot_id, cycle_number)
        references jackpot_cycles (jackpot_id, cycle_number),
    -- a cycle is paid at most once
    constraint jackpot_awards_one_per_cycle unique (jackpot_id, cycle_number),
    constraint jackpot_awards_contribution_fkey foreign key (contribution_id) references jackpot_contributions (id),
    constraint jackpot_awards_amount_not_negative check (awarded_amount_micros >= 0),
    constraint jackpot_awards_trigger_known check (trigger_mode in ('must_drop', 'provider')),
    constraint jackpot_awards_status_known check (status in ('paid', 'rolled_back'))
);

-- Every award request, in the order the database serialised them, with what it
-- got: simultaneous claims on one cycle are all recorded, the winner and the rest.
create table jackpot_award_claims (
    id bigint generated always as identity,
    jackpot_id text not null,
    cycle_number bigint not null,
    player_id text not null,
    session_id text not null,
    idempotency_key text not null,
    request_hash bytea not null,
    outcome text not null,
    -- the award this claim made ('won') or lost to ('already_awarded')
    award_id bigint,
    created_at timestamptz not null default now(),
    constraint jackpot_award_claims_pkey primary key (id),
    constraint jackpot_award_claims_idempotency unique (jackpot_id, idempotency_key),
    constraint jackpot_award_claims_award_fkey foreign key (award_id) references jackpot_awards (id),
    constraint jackpot_award_claims_outcome_known check (
        outcome in ('won', 'already_awarded', 'cycle_not_open')
    )
);

create index jackpot_award_claims_cycle on jackpot_award_claims (jackpot_id, cycle_number, id);

-- Reconciliation -------------------------------------------------------------------

create table reconciliation_runs (
    id bigint generated always as identity,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    trigger text not null,
    -- cycles, awards, pools, reserves and accounts compared
    checks_count bigint not null default 0,
    mismatches bigint not null default 0,
    -- mismatches / checks, in parts per million
    mismatch_ratio_ppm bigint not null default 0,
    -- the sum of all balances: zero when the ledger balances
    ledger_sum_micros bigint not null default 0,
    -- the checks that did not hold
    report jsonb not null default '[]',
    constraint reconciliation_runs_pkey primary key (id),
    constraint reconciliation_runs_trigger_known check (trigger in ('schedule', 'admin', 'cli'))
);
