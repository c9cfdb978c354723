-- Keys compare as bytes. Ids are 32 lowercase hex chars, themes and authors are ASCII keys:
-- comparing them under the database's UTF-8 collation (strcoll for every btree step) was most of
-- PostgreSQL's CPU on writes. "C" compares bytes, as SQLite does, and changes no stored value:
-- the columns stay `text` (no table rewrite; the indexes on them are rebuilt).
--
-- `signal_themes` loses its foreign key to `signals`: the store writes a signal's theme rows in
-- the same statement as the signal, only for signals that statement inserted, so the key checked
-- nothing the write does not already guarantee, at the price of a trigger, a lookup and a row lock
-- on `signals` per theme row.
alter table signal_themes drop constraint if exists signal_themes_signal_id_fkey;

-- Nor a primary key: for the same reason a theme row can never be written twice (the store
-- writes each theme of a signal once, with the signal), and the key's random-order btree insert
-- per theme row was a quarter of PostgreSQL's CPU per batch (4.3 → 3.3 CPU-s per 100k signals).
-- Theme rows are read by theme and time (`signal_themes_theme_time`); a signal's themes are in
-- `signals.themes`.
alter table signal_themes drop constraint if exists signal_themes_pkey;

-- Three to five distinct values: no query of the store reads by channel alone, and each insert
-- paid for the index.
drop index if exists signals_channel;

-- Rebuilt below as a partial index; dropped first so the collation change does not build it twice.
drop index if exists signals_author_time;

alter table signals
    alter column id type text collate "C",
    alter column author type text collate "C";
alter table signal_themes
    alter column signal_id type text collate "C",
    alter column theme type text collate "C";
alter table alerts alter column id type text collate "C";
alter table source_cursors
    alter column source type text collate "C",
    alter column key type text collate "C";

-- The repeat-caller lookup (`author = any($1) and channel = $2 and occurred_at >= $3`). Signals
-- without an author never match it, so they stay out of the index; `author = any(…)` implies
-- `author is not null`, also in a generic plan.
create index signals_author_time on signals (author, occurred_at) where author is not null;

-- Time ranges over signals through a block-range index: signals are stored about in the order
-- they happened, so a BRIN index (a few pages, next to nothing per insert) narrows a time range
-- to the blocks that hold it, where the btree cost a random-order insert per signal
-- (3.65 -> 2.7-3.1 CPU-s per 100k signals written).
drop index if exists signals_occurred_at;
create index signals_occurred_at on signals using brin (occurred_at);
