-- The signal register. One row per signal id: replays collapse on the primary key.
create table signals (
    id            text primary key,
    channel       text not null,
    source        text not null,
    source_id     text not null,
    occurred_at   text not null,
    received_at   text not null,
    classified_at text not null,
    author        text,
    subject       text,
    thread_id     text,
    text          text not null,
    meta          text not null,
    themes        text not null,
    cause         text not null,
    kind          text not null,
    lang          text not null,
    sentiment     real not null,
    escalation    text not null,
    classifier    text not null
);
create index signals_occurred_at on signals (occurred_at);
create index signals_channel on signals (channel);

-- One row per (signal, theme) for counting, Pareto charts and windows.
create table signal_themes (
    signal_id   text not null references signals (id),
    theme       text not null,
    score       real not null,
    occurred_ms integer not null,
    primary key (signal_id, theme)
);
create index signal_themes_theme_time on signal_themes (theme, occurred_ms);

-- Where each source is: IMAP UIDs, file checkpoints, since_id cursors.
create table source_cursors (
    source     text not null,
    key        text not null,
    value      text not null,
    updated_at text not null,
    primary key (source, key)
);

create table alerts (
    id                text primary key,
    theme             text not null,
    window_start      text not null,
    window_end        text not null,
    count             integer not null,
    threshold         integer not null,
    raised_at         text not null,
    sample_signal_ids text not null
);
