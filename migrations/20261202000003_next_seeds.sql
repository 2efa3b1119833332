-- Provably fair, committed first (docs/SECURITY.md, item 8): each player has
-- a next server seed, drawn before they pick the client seed it will be paired
-- with, and shown only as its hash. Rotation promotes it to the active seed
-- (player_seeds) and draws the next one; a player without one gets it drawn
-- when it is first asked for, so existing players need no backfill.
create table player_next_seeds (
    player_id bigint not null,
    server_seed text not null,
    server_seed_hash text not null,
    created_at timestamptz not null default now(),
    constraint player_next_seeds_pkey primary key (player_id),
    constraint player_next_seeds_player_fkey foreign key (player_id) references players (id),
    constraint player_next_seeds_server_seed_format check (server_seed ~ '^[0-9a-f]{64}$'),
    constraint player_next_seeds_hash_format check (server_seed_hash ~ '^[0-9a-f]{64}$')
);
