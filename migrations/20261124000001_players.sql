-- Players: who a Telegram user is to Cekpot. Upserted by Telegram user id at
-- every sign-in (POST /api/auth/telegram) from the verified initData.
create table players (
    id bigint generated always as identity,
    telegram_user_id bigint not null,
    first_name text not null,
    last_name text,
    username text,
    language_code text,
    is_premium boolean not null default false,
    created_at timestamptz not null default now(),
    last_sign_in_at timestamptz not null default now(),
    constraint players_pkey primary key (id),
    constraint players_telegram_user_id_key unique (telegram_user_id),
    constraint players_first_name_length check (char_length(first_name) between 1 and 256),
    constraint players_last_name_length check (char_length(last_name) <= 256),
    constraint players_username_length check (char_length(username) <= 64),
    constraint players_language_code_length check (char_length(language_code) <= 16)
);
