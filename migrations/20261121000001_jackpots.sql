-- Jackpots and the cycles they run in.
--
-- Amounts are bigint micro-units: millionths of the currency's main unit (see
-- domain::money::Amount), so sub-cent contributions are exact without floats.
-- Rates and shares are parts per million of what they apply to.

create table jackpots (
    id text not null,
    name text not null,
    tier text not null,
    currency text not null,
    contribution_rate_ppm integer not null,
    -- the part of each contribution set aside to fund the next cycle's seed
    reserve_share_ppm integer not null,
    seed_micros bigint not null,
    max_value_micros bigint not null,
    min_bet_micros bigint not null default 0,
    trigger_mode text not null,
    status text not null default 'active',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint jackpots_pkey primary key (id),
    -- ids appear in URLs and in providers' configuration: keep them plain
    constraint jackpots_id_format check (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    constraint jackpots_name_length check (char_length(name) between 1 and 80),
    constraint jackpots_tier_known check (tier in ('local', 'shared', 'mega')),
    constraint jackpots_currency_format check (currency ~ '^[A-Z]{3}$'),
    constraint jackpots_contribution_rate_range check (contribution_rate_ppm between 1 and 1000000),
    constraint jackpots_reserve_share_range check (reserve_share_ppm between 0 and 1000000),
    constraint jackpots_seed_not_negative check (seed_micros >= 0),
    -- a must-drop pool drops in [seed, max): the interval must not be empty
    constraint jackpots_seed_below_max check (seed_micros < max_value_micros),
    constraint jackpots_min_bet_not_negative check (min_bet_micros >= 0),
    constraint jackpots_trigger_mode_known check (trigger_mode in ('must_drop', 'provider')),
    constraint jackpots_status_known check (status in ('active', 'paused'))
);

create table jackpot_cycles (
    jackpot_id text not null,
    cycle_number bigint not null,
    seed_micros bigint not null,
    -- the pool: seed plus the pool shares of every contribution so far
    value_micros bigint not null,
    opened_at timestamptz not null default now(),
    closed_at timestamptz,
    constraint jackpot_cycles_pkey primary key (jackpot_id, cycle_number),
    constraint jackpot_cycles_jackpot_fkey foreign key (jackpot_id) references jackpots (id),
    constraint jackpot_cycles_number_positive check (cycle_number >= 1),
    -- a pool never falls below its seed; only an award closes it
    constraint jackpot_cycles_value_not_below_seed check (value_micros >= seed_micros)
);

-- at most one running cycle per jackpot
create unique index jackpot_cycles_one_open on jackpot_cycles (jackpot_id) where closed_at is null;
