-- Spike alerts (issue 13): every change of an alert's life as the alerter emitted it, and an
-- outbox of notifications still to deliver. The alerter writes an event, its outbox rows and its
-- Kafka position in one transaction, so a notification is queued exactly when its event is new:
-- a replay inserts no event and queues nothing. Keys are byte-ordered (`collate "C"`), as in 0003.
create table alert_events (
    id           text collate "C" primary key,
    alert_id     text collate "C" not null,
    series       text collate "C" not null,
    -- pending, firing, update, repeat, resolved
    state        text collate "C" not null,
    bucket_start timestamptz not null,
    emitted_at   timestamptz not null,
    -- The whole `AlertEvent` as the notifiers send it.
    body         jsonb not null
);
-- An alert's events (its latest state; the outbox's order within one alert).
create index alert_events_alert on alert_events (alert_id, bucket_start);
create index alert_events_bucket on alert_events (bucket_start, emitted_at);

-- One row per event and notifier (`webhook`, `slack`, `teams`, `alertmanager`). A row is due when
-- it is unsent and `next_attempt_at` has passed; a failure moves `next_attempt_at` on (backoff).
create table alert_outbox (
    event_id        text collate "C" not null,
    sink            text collate "C" not null,
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null,
    last_error      text,
    sent_at         timestamptz,
    primary key (event_id, sink)
);
-- Only unsent rows are ever looked for: the index holds the queue, not the history.
create index alert_outbox_due on alert_outbox (sink, next_attempt_at) where sent_at is null;
