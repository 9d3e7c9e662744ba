"""Examples processed until ‖∇f‖ or test accuracy first reaches a threshold, mean ± sd over
the seeds of each arm of scripts/experiments/increasing-batch (reads runs/increasing-batch)."""
import json, statistics as st
def first(run, key, test):
    for line in open(f"runs/increasing-batch/{run}/metrics.jsonl"):
        d = json.loads(line)
        if key in d and test(d[key]): return d.get("samples") or samples_at(run, d["step"])
    return None
def samples_at(run, step):
    best = 0
    for line in open(f"runs/increasing-batch/{run}/metrics.jsonl"):
        d = json.loads(line)
        if "samples" in d and d["step"] <= step: best = max(best, d["samples"])
    return best
def report(name, key, test):
    for arm in ("fixed", "increasing"):
        xs = [first(f"{arm}-s{s}", key, test) for s in (1, 2, 3)]
        ok = [x for x in xs if x is not None]
        txt = f"{st.mean(ok)/1e6:.3f}M ± {st.stdev(ok)/1e6:.3f}M" if len(ok) > 1 else (f"{ok[0]/1e6:.3f}M" if ok else "not reached")
        print(f"| {name} | {arm} | {txt} | {len(ok)}/3 |")
print("| target | arm | examples processed (mean ± sd) | runs reaching it |")
print("| --- | --- | --- | --- |")
for thr in (0.2, 0.15):
    report(f"‖∇f‖ < {thr}", "full_grad_norm", lambda v, t=thr: v < t)
for acc in (0.87, 0.88):
    report(f"test accuracy ≥ {acc:.0%}", "accuracy", lambda v, a=acc: v >= a)
