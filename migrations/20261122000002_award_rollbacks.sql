-- Award rollbacks: an award is never edited or deleted. A rollback is a
-- compensating transfer (the winner's wallet → the jackpot's reserve, which
-- funds future seeds), the award's status set to 'rolled_back', and this row:
-- who, why, how much. At most one per award.
create table jackpot_award_rollbacks (
    id bigint generated always as identity,
    award_id bigint not null,
    jackpot_id text not null,
    amount_micros bigint not null,
    rolled_back_by text not null,
    reason text not null,
    created_at timestamptz not null default now(),
    constraint jackpot_award_rollbacks_pkey primary key (id),
    constraint jackpot_award_rollbacks_once unique (award_id),
    constraint jackpot_award_rollbacks_award_fkey foreign key (award_id) references jackpot_awards (id),
    constraint jackpot_award_rollbacks_amount_not_negative check (amount_micros >= 0),
    constraint jackpot_award_rollbacks_reason_length check (char_length(reason) between 1 and 500)
);
