"""The no-free-lunch effect (Han et al. 2022) on a real model: whybox.choose ranks methods differently
when "nearby" means removing features than when it means small Gaussian noise.

    .venv/bin/python bench/no_free_lunch.py     # writes bench/results/no_free_lunch.md
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown, stamp  # noqa: E402

import whybox  # noqa: E402
from whybox.datasets import load_openxai, openxai_model  # noqa: E402


def main() -> None:
    test, train = load_openxai("adult", "test"), load_openxai("adult", "train")
    net = openxai_model("adult", "ann")
    X = test.X.iloc[:50]
    bg = whybox.kmeans(train.X, 20, seed=0)
    parts = [f"# No free lunch: the most faithful method depends on the neighbourhood ({stamp()})", "",
             f"Machine: {machine()}. Model: OpenXAI adult ANN; 50 test rows; background: k-means(20) of "
             "the train split; score: local fidelity (MSE of the explanation read as a linear model, lower "
             "is better) on 200 fresh samples per row, the same samples for every method; ± is the 95% CI "
             "half-width over rows. Command: `.venv/bin/python bench/no_free_lunch.py`.", ""]
    for nb in ("removal", "removal(0.1)", "gaussian(0.05)", "gaussian(0.01)"):
        t0 = time.perf_counter()
        c = whybox.choose(net, X, neighbourhood=nb, background=bg, seed=0)
        r = c.ranking
        r = r.assign(**{"fidelity MSE": r.score, "± CI": (r.hi - r.lo) / 2})[
            ["rank", "method", "fidelity MSE", "± CI", "explain_rows", "eval_rows"]]
        parts += [f"## neighbourhood = {nb}: winner **{c.winner}** ({time.perf_counter() - t0:.1f} s)", "",
                  markdown(r, ".3g"), ""]
        print(nb, "->", c.winner, flush=True)
    out = Path(__file__).resolve().parent / "results" / "no_free_lunch.md"
    out.write_text("\n".join(parts))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
