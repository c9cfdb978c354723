-- The same schema as PostgreSQL's 0004 (SQLite compares text as bytes already): alert events as
-- the alerter emitted them, and the notification outbox, written in one transaction with them.
create table alert_events (
    id           text primary key,
    alert_id     text not null,
    series       text not null,
    state        text not null,
    bucket_start text not null,
    emitted_at   text not null,
    body         text not null
);
create index alert_events_alert on alert_events (alert_id, bucket_start);
create index alert_events_bucket on alert_events (bucket_start, emitted_at);

create table alert_outbox (
    event_id        text not null,
    sink            text not null,
    attempts        integer not null default 0,
    next_attempt_at text not null,
    last_error      text,
    sent_at         text,
    primary key (event_id, sink)
);
create index alert_outbox_due on alert_outbox (sink, next_attempt_at) where sent_at is null;
