-- A cycle's meters add up every bet and contribution of its life. Each one
-- fits a bigint of micro-units, their sum need not (about 9.2 × 10¹² units of
-- the currency): the meters become numeric(38,0), as wide as the server's
-- 128-bit domain::money::Total, so a long-lived pool never refuses a bet for
-- its meter's sake. Existing values are kept exactly.
alter table jackpot_cycles
    alter column bets_micros type numeric(38, 0),
    alter column contributions_micros type numeric(38, 0),
    alter column pool_shares_micros type numeric(38, 0),
    alter column reserve_shares_micros type numeric(38, 0);
