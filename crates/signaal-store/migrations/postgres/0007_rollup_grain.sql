-- The daily rollup keyed by grain first (0 volume, 1 theme, 2 subject, 3 theme × subject), so a
-- report reads only its grain's rows: with `day` first, a year's theme Pareto filtered three
-- million rows of all grains down to two hundred thousand.
create table signal_rollup_by_grain (
    grain      smallint not null,
    day        integer not null,
    theme      text collate "C" not null,
    subject    text collate "C" not null,
    channel    text collate "C" not null,
    cause      text collate "C" not null,
    kind       text collate "C" not null,
    signals    bigint not null,
    impact_sum double precision not null,
    primary key (grain, day, theme, subject, channel, cause, kind)
);
insert into signal_rollup_by_grain
select (case when theme = '*' then 0 else 1 end) + (case when subject = '*' then 0 else 2 end),
       day, theme, subject, channel, cause, kind, signals, impact_sum
from signal_rollup;
drop table signal_rollup;
alter table signal_rollup_by_grain rename to signal_rollup;
alter index signal_rollup_by_grain_pkey rename to signal_rollup_pkey;

-- Signals per day and classifier version, kept on write and by `signaal reclassify`: which
-- versions a report covers, without reading the signals.
create table classifier_days (
    day        integer not null,
    classifier text collate "C" not null,
    signals    bigint not null,
    primary key (day, classifier)
);
insert into classifier_days (day, classifier, signals)
select floor(extract(epoch from occurred_at) / 86400)::integer, classifier, count(*)
from signals
group by 1, 2;

-- Newest-first pages and the customers who came back read this instead of the table: a
-- keyset page is a walk down it, and (with `author`) grouping a window's signals by customer
-- is an index-only scan. It replaces the BRIN index, which needs signals stored in time order.
drop index if exists signals_occurred_at;
create index signals_time on signals (occurred_at, id) include (author);

-- Each signal's subjects with their evidence, as its themes are kept (listings show both;
-- reclassification takes the old subjects from here). Signals stored before have their subject
-- rows' ids, without evidence.
alter table signals add column subjects jsonb not null default '[]';
update signals s set subjects = x.subjects
from (select signal_id,
             jsonb_agg(jsonb_build_object('id', subject, 'evidence', '[]'::jsonb) order by subject)
                 as subjects
      from signal_subjects group by signal_id) as x
where s.id = x.signal_id;
