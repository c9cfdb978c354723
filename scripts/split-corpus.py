#!/usr/bin/env python3
"""Splits corpus/signals.txt into corpus/dev.ndjson (60%) and corpus/test.ndjson (40%), and writes
corpus/holdout.txt, corpus/holdout2.txt and corpus/holdout3.txt (each written after the rules of its time were frozen)
to corpus/holdout*.ndjson.

The split is a fixed hash of each text, so adding signals never moves existing ones between
parts. Rules are tuned on dev only; test numbers are reported, never tuned on.
"""
import hashlib
import json
import os

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")
HUMAN = {"staff_conduct"}
parts = {"dev": [], "test": [], "holdout": [], "holdout2": [], "holdout3": []}
n = 0
for source in ["signals.txt", "holdout.txt", "holdout2.txt", "holdout3.txt"]:
  with open(os.path.join(root, source), encoding="utf-8") as f:
    for line in f:
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        channel, themes, kind, lang, text = [p.strip() for p in line.split("|", 4)]
        n += 1
        themes = [] if themes == "-" else [t.strip() for t in themes.split(",")]
        human = any(t in HUMAN for t in themes)
        system = any(t not in HUMAN for t in themes)
        cause = "mixed" if human and system else "human" if human else "system" if system else "unknown"
        text = text.replace("\\n", "\n")
        item = {"id": f"c{n:03d}", "channel": channel, "text": text, "themes": sorted(themes),
                "cause": cause, "kind": kind, "lang": lang}
        h = hashlib.sha256(text.encode("utf-8")).digest()[0]
        if source != "signals.txt":
            parts[source.removesuffix(".txt")].append(item)
        else:
            parts["dev" if h < 154 else "test"].append(item)
for name, items in parts.items():
    with open(os.path.join(root, f"{name}.ndjson"), "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    print(name, len(items))
