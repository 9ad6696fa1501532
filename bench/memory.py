"""Wide data: KernelSHAP's peak memory against the number of rows, for three chunk_rows settings.

    .venv/bin/python bench/memory.py            # about 5 minutes on 2 cores
    .venv/bin/python bench/memory.py --quick

150 features, default KernelSHAP (n_samples="auto" = 2d + 2048 coalitions, the stratified design),
a 2-row background, a linear model (so the model itself costs nothing), 500 and 5,000 rows. Each run
is a fresh process; its peak RSS (ru_maxrss) is measured. Target (PASS/FAIL): for every chunk_rows,
the peak at 5,000 rows is within 10% of the peak at 500 rows. For reference, the outputs a run would
keep if every row's coalition outputs were held at once (rows x background x coalitions x 8 bytes),
which is what whybox did before the fit was streamed. Writes bench/results/memory.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown, stamp  # noqa: E402

CHILD = r'''
import json, resource, sys, time
import numpy as np
import whybox
n, chunk_rows, d = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
w = rng.normal(size=d)
X = rng.normal(size=(n, d))
bg = rng.normal(size=(2, d))
t = time.perf_counter()
e = whybox.explain(lambda Z: Z @ w, X, background=bg, seed=0, chunk_rows=chunk_rows)
sec = time.perf_counter() - t
err = float(np.abs(e.values - (X - bg.mean(0)) * w).max())        # a linear model's exact Shapley values
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": sec,
                  "model_rows": e.n_model_rows, "max_error": err, "coalitions": e.params["n_coalitions"]}))
'''


def main():
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="500 and 2,000 rows, 60 features")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "memory.md")
    a = ap.parse_args()
    d = 60 if a.quick else 150
    sizes = (500, 2000) if a.quick else (500, 5000)
    rows = []
    for chunk_rows in (4096, 16384, 32768):
        for n in sizes:
            p = subprocess.run([sys.executable, "-c", CHILD, str(n), str(chunk_rows), str(d)], capture_output=True,
                               text=True, check=True)
            r = json.loads(p.stdout.strip().splitlines()[-1])
            m = 2 * d + 2048
            r.update({"chunk_rows": chunk_rows, "rows": n, "features": d,
                      "kept_if_unstreamed_mb": n * 2 * m * 8 / 2**20})
            print(r, flush=True)
            rows.append(r)
    df = pd.DataFrame(rows)[["chunk_rows", "rows", "features", "peak_mb", "kept_if_unstreamed_mb", "seconds",
                             "model_rows", "max_error"]]
    checks = []
    for cr, sub in df.groupby("chunk_rows"):
        lo, hi = sub.sort_values("rows")["peak_mb"].tolist()
        checks.append((f"chunk_rows={cr}: peak RSS at {sizes[1]:,} rows within 10% of {sizes[0]:,} rows "
                       f"({lo:.0f} -> {hi:.0f} MB)", hi <= 1.1 * lo))
    checks.append(("attributions exact for the linear model (max error < 1e-9)", bool((df["max_error"] < 1e-9).all())))
    text = [f"# Wide data: KernelSHAP peak memory\n\n{stamp()} · {machine()} · "
            f"`{' '.join(['bench/memory.py'] + sys.argv[1:])}`\n",
            f"{d} features, default KernelSHAP ({2 * d + 2048} coalitions, stratified), 2 background rows, a linear "
            "model; one fresh process per run, peak RSS = ru_maxrss. `kept_if_unstreamed_mb`: the coalition "
            "outputs alone if every row's were kept at once (the behaviour before the fit was streamed).\n",
            markdown(df, floatfmt=".4g"), "\n## Checks\n"] + [f"- {'PASS' if ok else 'FAIL'}: {w}" for w, ok in checks]
    a.out.write_text("\n".join(text) + "\n")
    print("\n".join(f"{'PASS' if ok else 'FAIL'}: {w}" for w, ok in checks))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
