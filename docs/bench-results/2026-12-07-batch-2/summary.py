#!/usr/bin/env python3
"""Per cell of runs.jsonl (the medians): ck-batch against single-update and
for-update, as the issue-29 targets read. Prints Markdown."""
import json, sys
med = {}
for line in open(sys.argv[1] if len(sys.argv) > 1 else "runs.jsonl"):
    r = json.loads(line)
    if r.get("scenario") == "contention" and r.get("kind") == "median":
        med[(r["backend"], r["k"], r["t"], r["procs"], r["strategy"])] = r
cells = sorted({k[:4] for k in med})
print("| engine | K | T | P | ck-batch ops/s | ÷ single-update | ÷ for-update | ck-adaptive ÷ for-update | p99 ck-batch ms | p99 for-update ms | give-ups (batch) | lost (all strategies) | calls/batch |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for c in cells:
    g = lambda s, f: med.get(c + (s,), {}).get(f, float("nan"))
    b, su, fu, ad = (g(s, "goodput") for s in ("ck-batch", "single-update", "for-update", "ck-adaptive"))
    lost = sum(med[k]["lost_updates"] for k in med if k[:4] == c)
    mism = sum(med[k]["sum_mismatches"] for k in med if k[:4] == c)
    gu = sum(med[k]["give_ups"] for k in med if k[:4] == c)
    print(f"| {c[0]} | {c[1]} | {c[2]} | {c[3]} | {b:.0f} | {b/su:.2f}× | {b/fu:.2f}× | {ad/fu:.2f}× | "
          f"{g('ck-batch','p99_ms'):.1f} | {g('for-update','p99_ms'):.1f} | {g('ck-batch','give_ups')} (all: {gu}) | "
          f"{lost}{'' if mism == 0 else f' ({mism} sums off)'} | {g('ck-batch','mean_batch'):.1f} |")
