-- The daily rollup without channel, cause and kind: what reports read when they filter on none
-- of those (most do). A year of theme rows is 3,650 here against up to 200,000 with the channel
-- × cause × kind fan-out. Kept on write and by reclassification, like `signal_rollup`.
create table signal_rollup_days (
    grain      smallint not null,
    day        integer not null,
    theme      text collate "C" not null,
    subject    text collate "C" not null,
    signals    bigint not null,
    impact_sum double precision not null,
    primary key (grain, day, theme, subject)
);
insert into signal_rollup_days (grain, day, theme, subject, signals, impact_sum)
select grain, day, theme, subject, sum(signals), sum(impact_sum)
from signal_rollup
group by 1, 2, 3, 4;
