-- Analysts' corrections (issue 16): what a person said a signal's themes, kind and cause are.
-- The signal's own row carries the corrected classification too (written in the same
-- transaction); `signaal reclassify` passes labelled signals over, so a correction stays.
create table labels (
    signal_id   text collate "C" primary key,
    themes      jsonb not null,
    kind        text collate "C" not null,
    cause       text collate "C" not null,
    analyst     text not null,
    note        text,
    labelled_at timestamptz not null
);
