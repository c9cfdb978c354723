-- The same schema as PostgreSQL's 0007: the rollup keyed by grain first (0 volume, 1 theme,
-- 2 subject, 3 theme × subject), signals per day and classifier version, and an index for
-- newest-first pages and customers who came back.
create table signal_rollup_by_grain (
    grain      integer not null,
    day        integer not null,
    theme      text not null,
    subject    text not null,
    channel    text not null,
    cause      text not null,
    kind       text not null,
    signals    integer not null,
    impact_sum real not null,
    primary key (grain, day, theme, subject, channel, cause, kind)
) without rowid;
insert into signal_rollup_by_grain
select (case when theme = '*' then 0 else 1 end) + (case when subject = '*' then 0 else 2 end),
       day, theme, subject, channel, cause, kind, signals, impact_sum
from signal_rollup;
drop table signal_rollup;
alter table signal_rollup_by_grain rename to signal_rollup;

create table classifier_days (
    day        integer not null,
    classifier text not null,
    signals    integer not null,
    primary key (day, classifier)
) without rowid;
insert into classifier_days (day, classifier, signals)
select unixepoch(occurred_at) / 86400
       - (unixepoch(occurred_at) < 0 and unixepoch(occurred_at) % 86400 != 0),
       classifier, count(*)
from signals
group by 1, 2;

drop index if exists signals_occurred_at;
create index signals_time on signals (occurred_at, id, author);

-- As on PostgreSQL: each signal's subjects with their evidence (ids only for those before).
alter table signals add column subjects text not null default '[]';
create index signal_subjects_signal on signal_subjects (signal_id);
update signals set subjects = (
    select json_group_array(json_object('id', subject, 'evidence', json('[]')))
    from (select subject from signal_subjects u where u.signal_id = signals.id order by subject)
)
where id in (select signal_id from signal_subjects);
drop index signal_subjects_signal;
