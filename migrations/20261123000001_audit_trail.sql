-- The audit trail: every write appends a record in its own transaction. The
-- records form a SHA-256 hash chain: record n's hash covers record n-1's hash
-- and record n's body, so changing, removing or reordering any record breaks
-- every link after it (`server audit verify` names the first broken one).
--
--   hash(n) = SHA-256(hash(n-1) || body(n) as UTF-8), hash(0) = 32 zero bytes
--
-- The body is the record as JSON text, stored exactly as hashed: sequence
-- number, time, who (key id), what, request id, jackpot, amounts before and
-- after, and the details. docs/AUDIT.md describes every action.
create table audit_records (
    seq bigint not null,
    prev_hash bytea not null,
    hash bytea not null,
    body text not null,
    constraint audit_records_pkey primary key (seq),
    constraint audit_records_seq_positive check (seq > 0),
    constraint audit_records_hash_length check (octet_length(hash) = 32 and octet_length(prev_hash) = 32)
);

-- The chain's head: the last sequence number and hash. One row; appending
-- locks it, so records are numbered without gaps in commit order. Every writer
-- appends as its transaction's last statement, so no one holds the head while
-- waiting for another lock.
create table audit_chain_head (
    id boolean not null default true,
    last_seq bigint not null,
    last_hash bytea not null,
    constraint audit_chain_head_pkey primary key (id),
    constraint audit_chain_head_one_row check (id)
);

insert into audit_chain_head (id, last_seq, last_hash) values (true, 0, decode(repeat('00', 32), 'hex'));

-- Appends one record and answers its sequence number.
create function cekpot_audit_append(
    actor text, action text, request_id text, jackpot_id text,
    before_micros bigint, after_micros bigint, detail jsonb
) returns bigint
    language plpgsql as $$
declare
    next_seq bigint;
    prev bytea;
    record_body text;
    record_hash bytea;
begin
    select last_seq + 1, last_hash into next_seq, prev from audit_chain_head for update;
    record_body := json_build_object(
        'seq', next_seq,
        'at', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'actor', actor,
        'action', action,
        'requestId', request_id,
        'jackpotId', jackpot_id,
        'beforeMicros', before_micros,
        'afterMicros', after_micros,
        'detail', coalesce(detail, '{}'::jsonb))::text;
    record_hash := sha256(prev || convert_to(record_body, 'UTF8'));
    update audit_chain_head set last_seq = next_seq, last_hash = record_hash;
    insert into audit_records (seq, prev_hash, hash, body) values (next_seq, prev, record_hash, record_body);
    return next_seq;
end
$$;

-- Audit records and shipped segments are never changed or removed: the
-- database refuses UPDATE, DELETE and TRUNCATE (SQLSTATE CK003), whoever asks.
-- The triggers fire in every session_replication_role; only the tables' owner
-- or a superuser can disable them (docs/AUDIT.md: run the server as a role
-- that is neither), and the hash chain and the WORM bucket catch what such a
-- change does.
create function cekpot_refuse_change() returns trigger
    language plpgsql as $$
begin
    raise exception using errcode = 'CK003',
        message = format('%s is append-only: %s refused', tg_table_name, lower(tg_op));
end
$$;

create trigger audit_records_append_only before update or delete on audit_records
    for each row execute function cekpot_refuse_change();
create trigger audit_records_no_truncate before truncate on audit_records
    for each statement execute function cekpot_refuse_change();
alter table audit_records enable always trigger audit_records_append_only;
alter table audit_records enable always trigger audit_records_no_truncate;
revoke update, delete, truncate on audit_records from public;

-- Sealed segments shipped to the WORM bucket, one row per object, numbered
-- without gaps; segment n + 1 starts right after segment n's last record.
create table audit_segments (
    number bigint not null,
    first_seq bigint not null,
    last_seq bigint not null,
    object_key text not null,
    version_id text,
    -- SHA-256 of the object's bytes, and the hash of its last record
    object_sha256 bytea not null,
    last_hash bytea not null,
    retain_until timestamptz not null,
    shipped_at timestamptz not null default now(),
    constraint audit_segments_pkey primary key (number),
    constraint audit_segments_first_seq unique (first_seq),
    constraint audit_segments_object_key unique (object_key),
    constraint audit_segments_range check (number > 0 and first_seq > 0 and last_seq >= first_seq)
);

create trigger audit_segments_append_only before update or delete on audit_segments
    for each row execute function cekpot_refuse_change();
create trigger audit_segments_no_truncate before truncate on audit_segments
    for each statement execute function cekpot_refuse_change();
alter table audit_segments enable always trigger audit_segments_append_only;
alter table audit_segments enable always trigger audit_segments_no_truncate;
revoke update, delete, truncate on audit_segments from public;

-- Who made each contribution: the signing key and the request (older rows: null).
alter table jackpot_contributions add column key_id text, add column request_id text;
