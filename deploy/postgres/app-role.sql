-- The role the server runs as in production (docs/AUDIT.md, "Database roles
-- in production"; docs/SECURITY.md, item 6). The migrations run as the tables'
-- owner (`server migrate`); the server runs as this role, which owns nothing
-- and may do exactly what the server does:
-- * read everything and insert everywhere;
-- * update only the rows that are state: balances, pools and cycles, players
--   and their day totals, seeds, sessions, awards' status, the audit chain's
--   head;
-- * delete only a player's committed next seed as it is promoted;
-- * never update or delete the ledger's transfers, spins, contributions,
--   claims, rollbacks, changes, reconciliation runs or the audit trail, and
--   never truncate anything. Not being the owner, it cannot disable the
--   audit trail's append-only trigger either.
-- Run it as the owner after every migration that adds a table:
--   psql "$OWNER_DATABASE_URL" -f deploy/postgres/app-role.sql
-- then set the role's password (`\password cekpot_app`) and run the server
-- with DATABASE_URL naming cekpot_app and database.migrate_on_start = false.

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'cekpot_app') then
        create role cekpot_app login nosuperuser nocreatedb nocreaterole noinherit;
    end if;
end
$$;

revoke all on all tables in schema public from cekpot_app;
grant usage on schema public to cekpot_app;
grant select, insert on all tables in schema public to cekpot_app;
grant usage, select on all sequences in schema public to cekpot_app;

grant update on
    ledger_accounts,
    jackpots,
    jackpot_cycles,
    jackpot_awards,
    players,
    player_days,
    player_seeds,
    player_sessions,
    audit_chain_head
to cekpot_app;

grant delete on player_next_seeds to cekpot_app;

-- The migrations' own bookkeeping is the owner's.
revoke insert on _sqlx_migrations from cekpot_app;
