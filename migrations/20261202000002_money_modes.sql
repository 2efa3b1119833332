-- Money modes (docs/SECURITY.md, item 4). Real money is named by its ISO 4217
-- code (three letters), play money by a longer one (`CHIPS`, up to eight), so
-- the two can never share a wallet, a pool or a transfer:
-- * every transfer moves money within one currency (the code kept this; now
--   the database does too), so play money cannot feed or win a real pool;
-- * demo credit goes only into play money.
-- Rows written before this migration are history and are not rewritten; a
-- real-money installation finds any demo credit it gave in a real currency
-- with the query in docs/SECURITY.md.

alter table jackpots
    drop constraint jackpots_currency_format,
    add constraint jackpots_currency_format check (currency ~ '^[A-Z]{3,8}$');

alter table ledger_accounts
    drop constraint ledger_accounts_currency_format,
    add constraint ledger_accounts_currency_format check (currency ~ '^[A-Z]{3,8}$');

-- Once per statement, over the rows it inserted: a spin batch's hundreds of
-- transfers cost one check, not one per row.
create function ledger_transfers_within_one_money() returns trigger
language plpgsql as $$
declare
    offending text;
begin
    select format('transfer %s (%s) from %s to %s', t.id, t.kind, d.currency, c.currency)
      into offending
      from added t
      join ledger_accounts d on d.id = t.debit_account_id
      join ledger_accounts c on c.id = t.credit_account_id
     where d.currency <> c.currency
        or (t.kind = 'demo_credit' and length(c.currency) = 3)
     limit 1;
    if offending is not null then
        raise exception 'money of two modes or currencies would mix: %', offending
            using errcode = 'check_violation';
    end if;
    return null;
end
$$;

create trigger ledger_transfers_within_one_money
    after insert on ledger_transfers
    referencing new table as added
    for each statement execute function ledger_transfers_within_one_money();
