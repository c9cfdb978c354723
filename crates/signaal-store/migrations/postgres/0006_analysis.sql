-- The register's analysis (issue 14): a daily rollup kept on write, each signal's impact, and
-- improvement actions.
--
-- `signals.impact`: the signal's impact score (0–10, `signaal-analysis`'s `ImpactConfig`), set
-- when it is stored; null for signals stored before.
alter table signals add column impact real;

-- Signals per day, kept in the same statement that stores them (only for signals it inserted, so
-- a replay adds nothing). Per signal one row for each of its themes (`subject` = '*'), each of its
-- subjects (`theme` = '*'), each theme × subject pair, and one for the volume ('*', '*'); reposts
-- count for nothing, as in `signal_themes`. `day` is days since 1970-01-01 UTC. A year of reports
-- reads a few hundred thousand of these rows instead of millions of signals.
create table signal_rollup (
    day        integer not null,
    theme      text collate "C" not null,
    subject    text collate "C" not null,
    channel    text collate "C" not null,
    cause      text collate "C" not null,
    kind       text collate "C" not null,
    signals    bigint not null,
    impact_sum double precision not null,
    primary key (day, theme, subject, channel, cause, kind)
);

-- The register as it stands: theme rows and the volume (subjects come with 0005 and later writes).
insert into signal_rollup (day, theme, subject, channel, cause, kind, signals, impact_sum)
select floor(t.occurred_ms / 86400000.0)::integer, t.theme, '*', s.channel, s.cause, s.kind,
       count(*), 0
from signal_themes t join signals s on s.id = t.signal_id
group by 1, 2, 3, 4, 5, 6;
insert into signal_rollup (day, theme, subject, channel, cause, kind, signals, impact_sum)
select floor(extract(epoch from s.occurred_at) / 86400)::integer, '*', '*', s.channel, s.cause,
       s.kind, count(*), 0
from signals s
where not (s.meta ? 'retweet_of')
group by 1, 2, 3, 4, 5, 6;

-- Improvement actions (plan–do–check–act): what was changed, for which theme and/or subject,
-- by whom, since when. The measurement is computed, never stored.
create table improvement_actions (
    id          bigint generated always as identity primary key,
    theme       text collate "C",
    subject     text collate "C",
    description text not null,
    owner       text not null,
    start_date  date not null,
    status      text collate "C" not null check (status in ('planned', 'running', 'done')),
    created_at  timestamptz not null,
    updated_at  timestamptz not null,
    check (theme is not null or subject is not null)
);
