-- The same schema as PostgreSQL's 0010: analysts' corrections.
create table labels (
    signal_id   text primary key,
    themes      text not null,
    kind        text not null,
    cause       text not null,
    analyst     text not null,
    note        text,
    labelled_at text not null
) without rowid;
