-- The same schema as PostgreSQL's 0006: each signal's impact, a daily rollup kept on write, and
-- improvement actions.
alter table signals add column impact real;

create table signal_rollup (
    day        integer not null,
    theme      text not null,
    subject    text not null,
    channel    text not null,
    cause      text not null,
    kind       text not null,
    signals    integer not null,
    impact_sum real not null,
    primary key (day, theme, subject, channel, cause, kind)
) without rowid;

insert into signal_rollup (day, theme, subject, channel, cause, kind, signals, impact_sum)
select t.occurred_ms / 86400000 - (t.occurred_ms < 0 and t.occurred_ms % 86400000 != 0),
       t.theme, '*', s.channel, s.cause, s.kind, count(*), 0
from signal_themes t join signals s on s.id = t.signal_id
group by 1, 2, 3, 4, 5, 6;
insert into signal_rollup (day, theme, subject, channel, cause, kind, signals, impact_sum)
select unixepoch(s.occurred_at) / 86400
       - (unixepoch(s.occurred_at) < 0 and unixepoch(s.occurred_at) % 86400 != 0),
       '*', '*', s.channel, s.cause,
       s.kind, count(*), 0
from signals s
where json_extract(s.meta, '$.retweet_of') is null
group by 1, 2, 3, 4, 5, 6;

create table improvement_actions (
    id          integer primary key autoincrement,
    theme       text,
    subject     text,
    description text not null,
    owner       text not null,
    start_date  text not null,
    status      text not null check (status in ('planned', 'running', 'done')),
    created_at  text not null,
    updated_at  text not null,
    check (theme is not null or subject is not null)
);
