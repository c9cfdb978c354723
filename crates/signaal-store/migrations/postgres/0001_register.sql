-- The signal register. One row per signal id: replays collapse on the primary key.
create table signals (
    id            text primary key,
    channel       text not null,
    source        text not null,
    source_id     text not null,
    occurred_at   timestamptz not null,
    received_at   timestamptz not null,
    classified_at timestamptz not null,
    author        text,
    subject       text,
    thread_id     text,
    text          text not null,
    meta          jsonb not null,
    themes        jsonb not null,
    cause         text not null,
    kind          text not null,
    lang          text not null,
    sentiment     real not null,
    escalation    jsonb not null,
    classifier    text not null
);
create index signals_occurred_at on signals (occurred_at);
create index signals_channel on signals (channel);

-- One row per (signal, theme) for counting, Pareto charts and windows.
create table signal_themes (
    signal_id   text not null references signals (id),
    theme       text not null,
    score       real not null,
    occurred_ms bigint not null,
    primary key (signal_id, theme)
);
create index signal_themes_theme_time on signal_themes (theme, occurred_ms);

-- Where each source is: IMAP UIDs, file checkpoints, since_id cursors.
create table source_cursors (
    source     text not null,
    key        text not null,
    value      text not null,
    updated_at timestamptz not null,
    primary key (source, key)
);

create table alerts (
    id                text primary key,
    theme             text not null,
    window_start      timestamptz not null,
    window_end        timestamptz not null,
    count             bigint not null,
    threshold         bigint not null,
    raised_at         timestamptz not null,
    sample_signal_ids jsonb not null
);
