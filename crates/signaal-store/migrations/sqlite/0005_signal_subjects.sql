-- Subjects (issue 14), with the same meaning as PostgreSQL's 0005: one row per (signal, subject),
-- written with the signal, only for signals that write inserted and never for a repost, so a
-- replay adds no row; no primary or foreign key, as `signal_themes` since 0003. SQLite compares
-- text as bytes already.
create table signal_subjects (
    signal_id   text not null,
    subject     text not null,
    occurred_ms integer not null
);
-- By subject and time; the signal id completes the key, so per-subject counts read the index alone.
create index signal_subjects_subject_time on signal_subjects (subject, occurred_ms, signal_id);
