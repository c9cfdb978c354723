#!/usr/bin/env python3
"""A plain Python classifier, the peer `scripts/bench-pipeline` measures signaal against.

What a team would write in an afternoon with the usual libraries: confluent-kafka consumer,
a few `re` patterns per theme, psycopg (v3) COPY into a table of its own, JSON to the output
topic. It keeps the same delivery promise as `signaal classifier`, so the comparison is fair on
that point:
- the batch is stored (COPY into a per-connection staging table, then `insert … on conflict do
  nothing`, one transaction: a replayed batch adds no row) and produced with an idempotent
  producer, `acks=all`, every delivery report awaited, before the offsets are committed
  (`enable.auto.commit=false`, synchronous commit);
- it does far less per signal than signaal: no redaction, no pseudonyms, no evidence offsets,
  no negation, cause, kind, language or call metadata. Read its numbers with that in mind.

    classifier.py --brokers H:P --topic RAW --out OUT --group G --dsn URL [--batch 500]
    classifier.py --dsn URL --setup          (create the table, then exit)

Stops between batches on SIGTERM or SIGINT.
"""

import argparse
import json
import re
import signal
import sys

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

# Matched on the lower-cased text; the first few are the ones the brief names.
THEMES = {
    "reachability": r"in de wacht|niet bereikbaar|neemt (?:niet|niemand) op|wachttijd|kan niemand bereiken",
    "payment": r"betal|factuur|incasso|salaris|toeslag|aanmaning",
    "digital_service": r"digid|inlog|website|\bapp\b|foutmelding|storing|mijn omgeving|formulier",
    "communication": r"\bbrief\b|uitleg|onduidelijk|snapt|begrijp|niemand legt",
    "handoffs": r"doorverbonden|kastje naar de muur|doorgestuurd",
    "commitments": r"terugbel|teruggebeld|beloofd|niet komen opdagen|afspraak",
    "staff_conduct": r"onbeleefd|grof|opgehangen|afgesnauwd|uitgelachen",
}
PATTERNS = [(name, re.compile(rx)) for name, rx in THEMES.items()]

TABLE = """
create table if not exists peer_signals (
    id text primary key,
    channel text not null,
    occurred_at timestamptz not null,
    text text not null,
    themes text[] not null,
    classified_at timestamptz not null default now()
)"""


def classify(text):
    folded = text.lower()
    return [name for name, rx in PATTERNS if rx.search(folded)]


def setup(dsn):
    with psycopg.connect(dsn) as conn:
        conn.execute(TABLE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers")
    ap.add_argument("--topic")
    ap.add_argument("--out")
    ap.add_argument("--group")
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--setup", action="store_true")
    args = ap.parse_args()
    if args.setup:
        setup(args.dsn)
        return 0
    for need in ("brokers", "topic", "out", "group"):
        if getattr(args, need) is None:
            ap.error(f"--{need} is required")

    stop = False

    def on_signal(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    })
    producer = Producer({
        "bootstrap.servers": args.brokers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
    })
    failed = []

    def delivered(err, _msg):
        if err is not None:
            failed.append(err)

    conn = psycopg.connect(args.dsn)
    conn.execute(TABLE)
    # Staging table for COPY: COPY itself cannot skip rows that are already stored, the insert
    # from it can, which keeps a replayed batch (after a crash or rebalance) from failing.
    conn.execute("create temp table stage (like peer_signals including defaults) on commit delete rows")
    conn.commit()
    consumer.subscribe([args.topic])
    try:
        while not stop:
            msgs = consumer.consume(args.batch, timeout=0.5)
            if not msgs:
                continue
            rows, out = [], []
            for m in msgs:
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                env = json.loads(m.value())
                sig = env["signal"]
                themes = classify(sig.get("text", ""))
                rows.append((sig["id"], sig["channel"], sig["occurred_at"], sig.get("text", ""), themes))
                out.append((sig["id"], json.dumps({"schema_version": 1, "type": "signal.peer", "signal": sig, "themes": themes})))
            with conn.cursor() as cur:
                with cur.copy("copy stage (id, channel, occurred_at, text, themes) from stdin") as cp:
                    for r in rows:
                        cp.write_row(r)
                cur.execute("insert into peer_signals select * from stage on conflict (id) do nothing")
            conn.commit()
            for key, value in out:
                while True:
                    try:
                        producer.produce(args.out, value=value, key=key, on_delivery=delivered)
                        break
                    except BufferError:
                        producer.poll(0.05)
            if producer.flush(120) != 0:
                raise RuntimeError("producer: deliveries still pending after 120 s")
            if failed:
                raise KafkaException(failed[0])
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
