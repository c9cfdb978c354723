-- The same as PostgreSQL's 0008: the daily rollup without channel, cause and kind.
create table signal_rollup_days (
    grain      integer not null,
    day        integer not null,
    theme      text not null,
    subject    text not null,
    signals    integer not null,
    impact_sum real not null,
    primary key (grain, day, theme, subject)
) without rowid;
insert into signal_rollup_days (grain, day, theme, subject, signals, impact_sum)
select grain, day, theme, subject, sum(signals), sum(impact_sum)
from signal_rollup
group by 1, 2, 3, 4;
