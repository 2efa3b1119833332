-- Every contribution and award claim now has an origin: '@house' for the
-- Mini App's own slot, else the provider of the service key that sent it (a
-- provider id never starts with '@'). Idempotency keys are unique per origin,
-- so no caller can pre-empt another's keys, and a provider's players get
-- wallets of their own — kind 'external_wallet', owned '<provider>/<player>'
-- — so they can never be paid into, or rolled back out of, a Mini App
-- player's wallet (owned by the player's id, digits only).

-- Contributions ------------------------------------------------------------------
-- Rows written before: the slot's were recorded with a 'player:<id>' key id;
-- a service key was its own provider (the default still); rows from before
-- key ids were recorded are '@legacy', which no caller can send.
alter table jackpot_contributions add column origin text;
update jackpot_contributions
   set origin = case when key_id like 'player:%' then '@house' else coalesce(key_id, '@legacy') end;
alter table jackpot_contributions
    alter column origin set not null,
    drop constraint jackpot_contributions_idempotency,
    add constraint jackpot_contributions_idempotency unique (jackpot_id, origin, idempotency_key),
    add constraint jackpot_contributions_origin_format
        check (origin in ('@house', '@legacy') or origin ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$');

-- Claims: a claim's origin is its award's audit record's actor (the key id).
alter table jackpot_award_claims add column origin text;
update jackpot_award_claims c
   set origin = coalesce(
       (select r.body::jsonb ->> 'actor' from audit_records r
         where c.outcome = 'won' and r.body::jsonb ->> 'action' = 'award'
           and (r.body::jsonb -> 'detail' ->> 'awardId')::bigint = c.award_id
         limit 1),
       '@legacy');
alter table jackpot_award_claims
    alter column origin set not null,
    drop constraint jackpot_award_claims_idempotency,
    add constraint jackpot_award_claims_idempotency unique (jackpot_id, origin, idempotency_key),
    add constraint jackpot_award_claims_origin_format
        check (origin in ('@house', '@legacy') or origin ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$');

-- Awards: their origin, and the exact account they paid, which a rollback
-- takes the money back from.
alter table jackpot_awards add column origin text, add column winner_account_id bigint;
update jackpot_awards a
   set origin = coalesce(
           (select c.origin from jackpot_contributions c where c.id = a.contribution_id),
           (select c.origin from jackpot_award_claims c where c.award_id = a.id and c.outcome = 'won' limit 1),
           '@legacy'),
       winner_account_id = (select t.credit_account_id from ledger_transfers t
                             where t.reference = 'award:' || a.id and t.kind = 'award' limit 1);
alter table jackpot_awards
    alter column origin set not null,
    alter column winner_account_id set not null,
    add constraint jackpot_awards_winner_account_fkey foreign key (winner_account_id) references ledger_accounts (id);

-- Wallets ---------------------------------------------------------------------
alter table ledger_accounts
    drop constraint ledger_accounts_kind_known,
    add constraint ledger_accounts_kind_known check (
        kind in ('player_wallet', 'external_wallet', 'jackpot_pool', 'jackpot_reserve', 'house',
                 'deposits_clearing', 'game_clearing')
    );

-- Wallets a provider's award paid into a Mini App player's wallet before this
-- migration: the money is mixed with the player's and may be spent, so it is
-- not moved by a migration; each is listed here for an operator's review (and
-- any rollback of such an award still takes from the account it paid).
create table wallet_namespace_conflicts (
    award_id bigint not null,
    account_id bigint not null,
    origin text not null,
    amount_micros bigint not null,
    found_at timestamptz not null default now(),
    constraint wallet_namespace_conflicts_pkey primary key (award_id),
    constraint wallet_namespace_conflicts_award_fkey foreign key (award_id) references jackpot_awards (id),
    constraint wallet_namespace_conflicts_account_fkey foreign key (account_id) references ledger_accounts (id)
);

insert into wallet_namespace_conflicts (award_id, account_id, origin, amount_micros)
select a.id, a.winner_account_id, a.origin, a.awarded_amount_micros
  from jackpot_awards a
  join ledger_accounts la on la.id = a.winner_account_id
 where a.origin <> '@house'
   and la.owner ~ '^[1-9][0-9]{0,18}$'
   and exists (select 1 from players p where p.id::text = la.owner);

-- Every other 'player_wallet' whose owner is not a Mini App player is a
-- provider's player's: it becomes an external wallet of the provider that
-- first paid it, or else first named that player ('@legacy' when none did).
update ledger_accounts la
   set kind = 'external_wallet',
       owner = coalesce((select a.origin from jackpot_awards a where a.winner_account_id = la.id
                          order by a.id limit 1),
                        (select c.origin from jackpot_contributions c
                          where c.player_id = la.owner and c.origin <> '@house' order by c.id limit 1),
                        '@legacy') || '/' || la.owner
 where la.kind = 'player_wallet'
   and not (la.owner ~ '^[1-9][0-9]{0,18}$' and exists (select 1 from players p where p.id::text = la.owner));

alter table ledger_accounts
    add constraint ledger_accounts_external_wallet_not_negative
        check (kind <> 'external_wallet' or balance_micros >= 0),
    -- the two namespaces cannot meet: digits only, or '<provider>/<player>'
    add constraint ledger_accounts_wallet_owner_format check (
        (kind <> 'player_wallet' or owner ~ '^[1-9][0-9]{0,18}$')
        and (kind <> 'external_wallet'
             or owner ~ '^(@legacy|[A-Za-z0-9][A-Za-z0-9._:-]{0,63})/[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$')
    );

-- What the migration changed, in the audit chain.
select cekpot_audit_append(
    'migration:20261202000001', 'wallet_namespaces', null, null, null, null,
    jsonb_build_object(
        'externalWallets', (select count(*) from ledger_accounts where kind = 'external_wallet'),
        'conflicts', (select coalesce(jsonb_agg(jsonb_build_object('awardId', award_id, 'accountId', account_id,
                                                                   'origin', origin, 'amountMicros', amount_micros)
                                                 order by award_id), '[]'::jsonb)
                        from wallet_namespace_conflicts)))
 where exists (select 1 from jackpot_awards);
