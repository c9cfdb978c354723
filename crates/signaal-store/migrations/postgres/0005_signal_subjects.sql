-- Subjects (issue 14): what a signal is about beside its themes — a letter, a service, a product,
-- a process (`classification.subjects`). One row per (signal, subject) for counting, Pareto lists
-- and recurrence per subject over a time range, as `signal_themes` is for themes. Written with the
-- signal in the same statement, only for signals that statement inserted and never for a repost,
-- so, like `signal_themes` since 0003, it needs neither a primary key nor a foreign key: a replay
-- adds no row. Keys are byte-ordered (`collate "C"`), as in 0003.
create table signal_subjects (
    signal_id   text collate "C" not null,
    subject     text collate "C" not null,
    occurred_ms bigint not null
);
-- Reads go by subject and time. The signal id completes the key, so counting distinct signals
-- per subject over a range, or joining a subject's signals to their theme rows, reads the index
-- alone. Inserts land at the end of each subject's range (signals arrive about in time order).
create index signal_subjects_subject_time on signal_subjects (subject, occurred_ms, signal_id);
