-- The rules a cycle runs under, fixed when the cycle opens. A jackpot's row
-- holds its configuration; edits to the parameters that change the odds or
-- the rate (contribution rate, reserve share, seed, maximum, minimum bet,
-- trigger mode) apply from the next cycle, which copies them when it opens.
-- Name and status are not rules: they change at once.

alter table jackpot_cycles
    -- bumped by every configuration change while the cycle is open, so a batch
    -- computed before a change (a pause) cannot be written after it
    add column config_version bigint not null default 0,
    add column contribution_rate_ppm integer,
    add column reserve_share_ppm integer,
    add column max_value_micros bigint,
    add column min_bet_micros bigint,
    add column trigger_mode text;

update jackpot_cycles c
   set contribution_rate_ppm = j.contribution_rate_ppm,
       reserve_share_ppm = j.reserve_share_ppm,
       max_value_micros = j.max_value_micros,
       min_bet_micros = j.min_bet_micros,
       trigger_mode = j.trigger_mode
  from jackpots j
 where j.id = c.jackpot_id;

alter table jackpot_cycles
    alter column contribution_rate_ppm set not null,
    alter column reserve_share_ppm set not null,
    alter column max_value_micros set not null,
    alter column min_bet_micros set not null,
    alter column trigger_mode set not null,
    add constraint jackpot_cycles_contribution_rate_range check (contribution_rate_ppm between 1 and 1000000),
    add constraint jackpot_cycles_reserve_share_range check (reserve_share_ppm between 0 and 1000000),
    add constraint jackpot_cycles_seed_below_max check (seed_micros < max_value_micros),
    add constraint jackpot_cycles_min_bet_not_negative check (min_bet_micros >= 0),
    add constraint jackpot_cycles_trigger_mode_known check (trigger_mode in ('must_drop', 'provider')),
    -- a must-drop pool drops before its maximum
    add constraint jackpot_cycles_drop_point_below_max check (drop_point_micros is null or drop_point_micros < max_value_micros);

-- Every change to a jackpot's configuration: who, why, what it was and became,
-- and the first cycle its rules apply to (null when only name or status changed).
create table jackpot_changes (
    id bigint generated always as identity,
    jackpot_id text not null,
    changed_by text not null,
    reason text not null,
    before jsonb not null,
    after jsonb not null,
    applies_from_cycle bigint,
    created_at timestamptz not null default now(),
    constraint jackpot_changes_pkey primary key (id),
    constraint jackpot_changes_jackpot_fkey foreign key (jackpot_id) references jackpots (id),
    constraint jackpot_changes_reason_length check (char_length(reason) between 1 and 500)
);

create index jackpot_changes_jackpot on jackpot_changes (jackpot_id, id);

-- Aborts the statement that calls it, with the given SQLSTATE and message. A
-- group commit's single write statement calls it when what it was computed
-- from no longer holds, so the whole statement — every row it wrote — rolls
-- back: 'CK001' a pool changed since it was read, 'CK002' an idempotency key
-- is stored already.
create function cekpot_abort(code text, reason text) returns bigint
    language plpgsql as $$
begin
    raise exception using errcode = code, message = reason;
end
$$;
