"""Exact Shapley interactions: whybox vs shapiq's ExactComputer on the same games.

    .venv/bin/python bench/interactions.py

shapiq (1.4.1, the last release for Python 3.11) runs in its own virtual environment, built once
(``--shapiq-venv``, default ``~/.cache/whybox/shapiq-venv``), on the same games: random games
(n = 4..9 players) and the removal games of a gradient-boosting model on diabetes (6 features, 20
background rows). For SII, k-SII, STII and FSII at orders 1-3 it prints the largest absolute
difference, and for FSII also each side's distance to the Faith-Shap least-squares solution
(computed here by its KKT system), since FSII is the one index shapiq computes by a solver.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, stamp  # noqa: E402

SHAPIQ = r'''
import json, sys
import numpy as np
from shapiq import ExactComputer
games = json.load(open(sys.argv[1]))
out = []
for g in games:
    vals = np.array(g["v"]); n = g["n"]
    def game(coal, vals=vals, n=n):
        coal = np.asarray(coal, bool)
        return vals[(coal * (1 << np.arange(n))).sum(1)]
    ec = ExactComputer(n_players=n, game=game)
    res = {}
    for idx in ["SII", "k-SII", "STII", "FSII"]:
        for order in (1, 2, 3):
            iv = ec(index=idx, order=order)
            res[f"{idx}|{order}"] = {",".join(map(str, k)): float(v) for k, v in iv.dict_values.items()}
    out.append(res)
json.dump(out, open(sys.argv[2], "w"))
'''


def venv(path: Path) -> Path:
    py = path / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "shapiq==1.4.1"], check=True)
    return py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapiq-venv", default=str(Path(os.environ.get("WHYBOX_CACHE") or Path.home() / ".cache" / "whybox")
                                                 / "shapiq-venv"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "interactions.md"))
    args = ap.parse_args()
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor

    from whybox.interactions.exact import fsii_least_squares, interactions as game_interactions
    from whybox.interactions.model import removal_games

    games = [{"n": n, "v": np.random.default_rng(n).normal(size=2 ** n).tolist(), "name": f"random n={n}"}
             for n in range(4, 10)]
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6]
    gbr = GradientBoostingRegressor(random_state=0).fit(X, y)
    V, *_ = removal_games(gbr, X.iloc[:3], X.iloc[:20])
    for r, v in enumerate(V):
        games.append({"n": 6, "v": v.tolist(), "name": f"diabetes GBR row {r}"})
    py = venv(Path(args.shapiq_venv))
    with tempfile.TemporaryDirectory() as tmp:
        gpath, opath = Path(tmp) / "g.json", Path(tmp) / "o.json"
        gpath.write_text(json.dumps(games))
        subprocess.run([str(py), "-c", SHAPIQ, str(gpath), str(opath)], check=True)
        ref = json.loads(opath.read_text())
    lines = ["# Exact Shapley interactions: whybox vs shapiq ExactComputer\n",
             f"Run {stamp()} on {machine()}; shapiq 1.4.1 in its own venv. Largest |whybox - shapiq| over all "
             "coalitions of sizes 0..order.\n",
             "| game | " + " | ".join(f"{i} o{o}" for i in ("SII", "k-SII", "STII", "FSII") for o in (1, 2, 3))
             + " | FSII o2: whybox vs LS | FSII o2: shapiq vs LS |",
             "|---" * 15 + "|"]
    worst = {}
    for g, r in zip(games, ref):
        cells = []
        v = np.array(g["v"])
        for idx in ("SII", "k-SII", "STII", "FSII"):
            for o in (1, 2, 3):
                mine = {",".join(map(str, k)): x for k, x in game_interactions(v, index=idx, order=o).items()}
                theirs = r[f"{idx}|{o}"]
                assert set(theirs) <= set(mine), (idx, o)
                err = max(abs(mine[k] - theirs.get(k, 0.0)) for k in mine)   # shapiq leaves exact zeros out
                worst[(idx, o)] = max(worst.get((idx, o), 0.0), err)
                cells.append(f"{err:.1e}")
        ls = {",".join(map(str, k)): x for k, x in fsii_least_squares(v, order=2).items()}
        mine = {",".join(map(str, k)): x for k, x in game_interactions(v, index="FSII", order=2).items()}
        cells += [f"{max(abs(mine[k] - ls[k]) for k in ls):.1e}",
                  f"{max(abs(r['FSII|2'].get(k, 0.0) - ls[k]) for k in ls):.1e}"]
        lines.append(f"| {g['name']} | " + " | ".join(cells) + " |")
    lines.append("\n## Worst case per index and order\n")
    for (idx, o), e in sorted(worst.items()):
        lines.append(f"- {idx} order {o}: {e:.2e} " + ("(PASS, <= 1e-9)" if e <= 1e-9 else "(above 1e-9)"))
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
