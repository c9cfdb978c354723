-- Repeat callers: the previous call of the same (pseudonymous) author.
create index signals_author_time on signals (author, occurred_at);
