"""Peak test accuracy per run of scripts/experiments/minibatch-lbfgs (reads runs/minibatch-lbfgs):
mean ± sd per arm and batch, a two-way ANOVA (batch × optimizer) on log peak accuracy as in
Silk et al., and docs/experiments/minibatch-lbfgs.svg."""
import json, math, os, statistics as st
from scipy.stats import f as f_dist

ROOT = "runs/minibatch-lbfgs"
BATCHES = ["100", "1000", "10000", "full"]
SEEDS = [1, 2, 3]
SGD_RATES = ["0.01", "0.1", "0.5"]

diverged = []
def peak(run):
    """The run's best test accuracy; a run that diverged (non-finite loss) before its first
    evaluation scores chance, 10 %, as an untrained classifier would."""
    path = f"{ROOT}/{run}/metrics.jsonl"
    if not os.path.exists(path): return None
    accs = [d["accuracy"] for d in map(json.loads, open(path)) if d.get("split") == "test"]
    if os.path.exists(f"{ROOT}/{run}.err") and "non-finite" in open(f"{ROOT}/{run}.err").read():
        diverged.append(run)
        if not accs: return 10.0
    return max(accs) * 100 if accs else None

arms = {"L-BFGS": "lbfgs"} | {f"SGD lr {lr}": f"sgd-lr{lr}" for lr in SGD_RATES}
peaks = {(arm, b): [p for s in SEEDS if (p := peak(f"{prefix}-b{b}-s{s}")) is not None]
         for arm, prefix in arms.items() for b in BATCHES}

if diverged: print("Diverged (non-finite loss; scored by their evaluations so far, or 10 % if none): " + ", ".join(sorted(diverged)) + "\n")

def fmt(xs): return f"{st.mean(xs):.2f} ± {st.stdev(xs):.2f}" if len(xs) > 1 else ("—" if not xs else f"{xs[0]:.2f}")

print("Peak test accuracy (%), mean ± sd over 3 seeds\n")
print("| arm | " + " | ".join(f"b={b}" for b in BATCHES) + " |")
print("| --- |" + " --- |" * len(BATCHES))
for arm in arms:
    print(f"| {arm} | " + " | ".join(fmt(peaks[(arm, b)]) for b in BATCHES) + " |")

# SGD tuned per batch: the rate with the best mean peak (what a user tuning SGD would keep),
# and the spread over every rate and seed (what an untuned user would see).
best = {b: max(SGD_RATES, key=lambda lr: st.mean(peaks[(f"SGD lr {lr}", b)] or [0])) for b in BATCHES}
print("\n| batch | L-BFGS sd over seeds | SGD best rate | SGD (best rate) sd | SGD sd over all rates and seeds |")
print("| --- | --- | --- | --- | --- |")
for b in BATCHES:
    every = [p for lr in SGD_RATES for p in peaks[(f"SGD lr {lr}", b)]]
    print(f"| {b} | {st.stdev(peaks[('L-BFGS', b)]):.2f} | {best[b]} | {st.stdev(peaks[(f'SGD lr {best[b]}', b)]):.2f} | {st.stdev(every):.2f} |")

def anova(cells):
    """Balanced two-way ANOVA with interaction; cells[(a, b)] = observations (equal counts)."""
    A = sorted({a for a, _ in cells}); B = sorted({b for _, b in cells}, key=BATCHES.index)
    n = len(next(iter(cells.values())))
    allv = [v for vs in cells.values() for v in vs]
    grand = st.mean(allv)
    ma = {a: st.mean([v for b in B for v in cells[(a, b)]]) for a in A}
    mb = {b: st.mean([v for a in A for v in cells[(a, b)]]) for b in B}
    ss_a = len(B) * n * sum((ma[a] - grand) ** 2 for a in A)
    ss_b = len(A) * n * sum((mb[b] - grand) ** 2 for b in B)
    ss_cells = n * sum((st.mean(cells[(a, b)]) - grand) ** 2 for a in A for b in B)
    ss_ab = ss_cells - ss_a - ss_b
    ss_e = sum((v - st.mean(cells[k])) ** 2 for k in cells for v in cells[k])
    df_a, df_b = len(A) - 1, len(B) - 1
    df_ab, df_e = df_a * df_b, len(A) * len(B) * (n - 1)
    ms_e = ss_e / df_e
    rows = [("optimizer", ss_a, df_a), ("batch", ss_b, df_b), ("batch × optimizer", ss_ab, df_ab)]
    print("\n| source | SS | df | F | p |")
    print("| --- | --- | --- | --- | --- |")
    for name, ss, df in rows:
        F = (ss / df) / ms_e
        print(f"| {name} | {ss:.4f} | {df} | {F:.1f} | {f_dist.sf(F, df, df_e):.2g} |")
    print(f"| residual | {ss_e:.4f} | {df_e} | | |")

print("\nTwo-way ANOVA on log peak accuracy, L-BFGS vs SGD at its best rate per batch (3 seeds per cell):")
cells = {}
for b in BATCHES:
    cells[("L-BFGS", b)] = [math.log(p) for p in peaks[("L-BFGS", b)]]
    cells[("SGD", b)] = [math.log(p) for p in peaks[(f"SGD lr {best[b]}", b)]]
if all(len(v) == 3 for v in cells.values()): anova(cells)
else: print("incomplete: some runs are missing")

# The plot: peak accuracy (mean ± sd) against batch size, log x.
W, H, L, R, T, Bm = 640, 400, 60, 150, 40, 50
xs = {b: L + i * (W - L - R) / (len(BATCHES) - 1) for i, b in enumerate(BATCHES)}
lo, hi = 0, 100
ally = [p for v in peaks.values() for p in v]
if ally: lo, hi = math.floor(min(ally) / 10) * 10, min(100, math.ceil(max(ally) / 10) * 10)
y = lambda v: T + (hi - v) / (hi - lo) * (H - T - Bm)
colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2 - 60}" y="20" text-anchor="middle" font-size="14">Peak test accuracy vs batch size (mean ± sd, 3 seeds, 6 epochs)</text>']
for t in range(lo, hi + 1, 10):
    svg.append(f'<line x1="{L}" x2="{W-R}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#ddd"/><text x="{L-8}" y="{y(t)+4:.1f}" text-anchor="end">{t}%</text>')
for b in BATCHES:
    svg.append(f'<text x="{xs[b]:.1f}" y="{H-Bm+18}" text-anchor="middle">{"60000 (full)" if b == "full" else b}</text>')
svg.append(f'<text x="{(L + W - R)/2:.1f}" y="{H-10}" text-anchor="middle">global batch (log scale)</text>')
for i, arm in enumerate(arms):
    c = colours[i]
    pts = [(xs[b], st.mean(peaks[(arm, b)]), st.stdev(peaks[(arm, b)]) if len(peaks[(arm, b)]) > 1 else 0) for b in BATCHES if peaks[(arm, b)]]
    svg.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="' + " ".join(f"{px:.1f},{y(m):.1f}" for px, m, _ in pts) + '"/>')
    for px, m, s in pts:
        svg.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y(m-s):.1f}" y2="{y(m+s):.1f}" stroke="{c}"/><circle cx="{px:.1f}" cy="{y(m):.1f}" r="3" fill="{c}"/>')
    svg.append(f'<line x1="{W-R+10}" x2="{W-R+30}" y1="{T+20*i}" y2="{T+20*i}" stroke="{c}" stroke-width="2"/><text x="{W-R+35}" y="{T+20*i+4}">{arm}</text>')
svg.append("</svg>")
open("docs/experiments/minibatch-lbfgs.svg", "w").write("\n".join(svg) + "\n")
print("\nwrote docs/experiments/minibatch-lbfgs.svg")
