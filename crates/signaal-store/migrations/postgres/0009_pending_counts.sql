-- Counts waiting to be added to the rollups and the version counts. The statement that stores
-- a batch appends its deltas here (no key, no index: no row another writer holds), and the
-- store moves them into `signal_rollup`, `signal_rollup_days` and `classifier_days` about once a
-- second and before every report (`Store::settle_counts`), summed, in one transaction. Adding
-- to the rollup rows in the batch statement itself made two writers wait on each other's rows
-- (every batch touches the same days) and cost PostgreSQL four times its work per signal.
create table signal_rollup_pending (
    grain      smallint not null,
    day        integer not null,
    theme      text collate "C" not null,
    subject    text collate "C" not null,
    channel    text collate "C" not null,
    cause      text collate "C" not null,
    kind       text collate "C" not null,
    signals    bigint not null,
    impact_sum double precision not null
) with (autovacuum_vacuum_threshold = 20000, autovacuum_vacuum_scale_factor = 0);

create table classifier_days_pending (
    day        integer not null,
    classifier text collate "C" not null,
    signals    bigint not null
) with (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);
