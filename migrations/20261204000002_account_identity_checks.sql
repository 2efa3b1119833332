-- An account's identity (kind, owner, currency) is written once, when the
-- account is created; its balance moves in every batch. PostgreSQL evaluates
-- every CHECK constraint of a table on every row an UPDATE writes, whichever
-- columns it sets, and reads each constraint's expression again for every
-- statement, so the three identity checks (a kind list and three regular
-- expressions, two thirds of the table's constraint text) cost each balance
-- update as much as the balance checks (docs/BENCHMARKS.md, session 14).
--
-- They move into a row trigger that fires only on an INSERT or on an UPDATE
-- that sets one of those columns. It refuses exactly what the constraints
-- refused, with the same SQLSTATE (23514, check_violation) and the same
-- constraint names, so nothing that reads the error changes. The balance
-- checks (wallets and pools never negative) stay constraints.

create function ledger_accounts_identity_checked() returns trigger
language plpgsql as $$
declare
    violated text;
begin
    if new.kind not in ('player_wallet', 'external_wallet', 'jackpot_pool', 'jackpot_reserve', 'house',
                        'deposits_clearing', 'game_clearing') then
        violated := 'ledger_accounts_kind_known';
    elsif new.currency !~ '^[A-Z]{3,8}$' then
        violated := 'ledger_accounts_currency_format';
    -- the two wallet namespaces cannot meet: digits only, or '<provider>/<player>'
    elsif (new.kind = 'player_wallet' and new.owner !~ '^[1-9][0-9]{0,18}$')
       or (new.kind = 'external_wallet'
           and new.owner !~ '^(@legacy|[A-Za-z0-9][A-Za-z0-9._:-]{0,63})/[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$') then
        violated := 'ledger_accounts_wallet_owner_format';
    end if;
    if violated is not null then
        raise exception 'new row for relation "ledger_accounts" violates check constraint "%"', violated
            using errcode = 'check_violation', constraint = violated, table = 'ledger_accounts',
                  schema = tg_table_schema,
                  detail = format('kind %s, owner %s, currency %s', new.kind, new.owner, new.currency);
    end if;
    return new;
end
$$;

-- Every existing row already passed these checks as constraints.
alter table ledger_accounts
    drop constraint ledger_accounts_kind_known,
    drop constraint ledger_accounts_currency_format,
    drop constraint ledger_accounts_wallet_owner_format;

create trigger ledger_accounts_identity_checked
    before insert or update of kind, owner, currency on ledger_accounts
    for each row execute function ledger_accounts_identity_checked();
