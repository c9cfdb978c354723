-- The same schema meaning as PostgreSQL's 0003 (SQLite already compares text as bytes):
-- `signal_themes` without its foreign key to `signals` and without a primary key (the store writes
-- each theme of a signal once, with the signal, only for signals it inserted), and no
-- `signals_channel` index.
drop index if exists signals_channel;

-- Only signals with an author can match the repeat-caller lookup (`author in (…)`).
drop index if exists signals_author_time;
create index signals_author_time on signals (author, occurred_at) where author is not null;

-- SQLite cannot drop a constraint: rebuild the table and copy every row.
create table signal_themes_new (
    signal_id   text not null,
    theme       text not null,
    score       real not null,
    occurred_ms integer not null
);
insert into signal_themes_new (signal_id, theme, score, occurred_ms)
    select signal_id, theme, score, occurred_ms from signal_themes;
drop table signal_themes;
alter table signal_themes_new rename to signal_themes;
create index signal_themes_theme_time on signal_themes (theme, occurred_ms);
