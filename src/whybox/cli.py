"""The ``whybox`` command line: a face over the API that parses and renders, never computes."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from whybox.errors import WhyboxError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="whybox: explain any black-box model, and measure how far each explanation can be trusted.")
console = Console()
err = Console(stderr=True)

DEMO_METHODS = "kernelshap,lime,occlusion,integrated_gradients,smoothgrad"
LLM_URL = typer.Option(None, "--llm", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:11434/v1 (Ollama) "
                       "(default: $WHYBOX_LLM_BASE_URL). The key is read from $WHYBOX_LLM_API_KEY or $OPENAI_API_KEY.")
LLM_MODEL = typer.Option(None, "--model", help="Model name on that server (default: $WHYBOX_LLM_MODEL).")
LLM_TIMEOUT = typer.Option(None, "--timeout", help="Seconds per LLM request (default 60).")
LLM_BUDGET = typer.Option(None, "--llm-budget", help="Most LLM requests to send (cache hits are free).")
LLM_NO_CACHE = typer.Option(False, "--no-cache", help="Do not read or write the on-disk LLM cache.")


def _parse_params(params: List[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in params or []:
        if "=" not in p:
            raise WhyboxError(f"--param must look like name=value, got {p!r}")
        k, v = p.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _top_table(title: str, exps: list, row: int, k: int = 5) -> Table:
    import numpy as np

    if any(e.all_outputs for e in exps):      # every output explained: show the row's predicted one
        j = int(np.argmax(exps[0].predictions[row]))
        exps = [e.output(j) if e.all_outputs else e for e in exps]
        label = exps[0].output_names[j] if exps[0].output_names else j
        title = f"{title} (output {label}, the predicted one)"
    t = Table(title=title)
    t.add_column("rank", justify="right")
    for e in exps:
        t.add_column(e.method)
    tops = [e.top_features(row, k) for e in exps]
    for r in range(k):
        cells = []
        for top in tops:
            if r < len(top):
                name, v = top[r]
                colour = "red" if v > 0 else "blue"
                cells.append(f"{name} [{colour}]{v:+.3g}[/{colour}]")
            else:
                cells.append("")
        t.add_row(str(r + 1), *cells)
    return t


@app.command()
def demo(out: Path = typer.Option(Path("whybox-report"), help="Folder for the report (JSON, PNG, HTML)."),
         rows: int = typer.Option(3, min=1, max=50, help="Number of test rows to explain."),
         methods: str = typer.Option(DEMO_METHODS, help="Comma-separated methods."),
         seed: int = typer.Option(0, help="Random seed.")) -> None:
    """Train a model on scikit-learn's breast-cancer data (no files, no network), explain a few test
    rows with several methods, print a table and write a report folder."""
    import whybox
    from whybox.datasets import demo as load_demo
    from whybox.io.report import write_html

    d = load_demo(seed)
    acc = (d.model.predict(d.X_test) == d.y_test).mean()
    console.print(f"[bold]model[/bold]: {d.description}; test accuracy {acc:.3f}")
    bg = whybox.kmeans(d.X_train, 20, seed=seed)
    X = d.X_test.iloc[:rows]
    out.mkdir(parents=True, exist_ok=True)
    exps = []
    summary = Table(title="cost per method")
    for c in ("method", "model rows", "calls", "seconds", "sum + base - prediction"):
        summary.add_column(c, justify="right")
    for m in [s.strip() for s in methods.split(",") if s.strip()]:
        e = whybox.explain(d.model, X, method=m, background=bg, seed=seed)
        exps.append(e)
        e.to_json(out / f"{m}.json", indent=1)
        e.plot("bar", row=0, path=str(out / f"{m}_row0_bar.png"))
        gap = abs(e.values[0].sum() + e.base_values[0] - e.predictions[0])
        summary.add_row(m, f"{e.n_model_rows:,}", str(e.n_model_calls), f"{e.seconds:.2f}",
                        "n/a" if gap != gap else f"{gap:.2g}")
    for r in range(len(X)):
        p = exps[0].predictions[r]
        label = exps[0].target_names()[r]
        console.print(_top_table(f"row {r}: predicted class {label} (p = {p:.3f}); top features by method", exps, r))
    console.print(summary)
    if len(exps[0]) > 1:
        exps[0].plot("beeswarm", path=str(out / f"{exps[0].method}_beeswarm.png"))
    write_html(exps, out / "report.html", title="whybox demo: breast cancer MLP", intro=d.description)
    console.print(f"report written to [bold]{out / 'report.html'}[/bold] (+ JSON and PNG files in {out})")


MODEL_ARG = typer.Argument(..., help="Model file: .skops (preferred) or .joblib/.pkl with --trust-pickle.")
DATA_ARG = typer.Argument(..., help="Data rows: a CSV or Parquet file.")
TRUSTED_OPT = typer.Option(None, "--trusted", help="A type or function a .skops file may use beyond the scikit-learn "
                           "classes whybox trusts (repeatable; e.g. numpy.log1p). Only for files you trust.")


def _model_and_table(model: Path, data: Path, drop: List[str], trust_pickle: bool, trusted: List[str]):
    """The model file and DATA without the --drop columns (named when unknown)."""
    from whybox.io.files import load_model, load_table

    est = load_model(model, trust_pickle=trust_pickle, trusted=list(trusted or ()))
    df = load_table(data)
    missing = [c for c in drop if c not in df.columns]
    if missing:
        raise WhyboxError(f"--drop names unknown column(s) {missing}; DATA has {list(df.columns)}")
    return est, df.drop(columns=list(drop))


def _load_inputs(model: Path, data: Path, rows: Optional[str], drop: List[str], background: Optional[Path],
                 n_background: int, seed: int, trust_pickle: bool,
                 trusted: List[str]):
    """Model, the selected rows (DataFrame), their indices, and a background sample."""
    import whybox
    from whybox.io.files import load_table, parse_rows

    est, df = _model_and_table(model, data, drop, trust_pickle, trusted)
    idx = parse_rows(rows, len(df))
    bg_df = df
    if background is not None:
        bg_df = load_table(background)
        bg_df = bg_df.drop(columns=[c for c in drop if c in bg_df.columns])
    if n_background < 1:
        raise WhyboxError(f"--n-background must be >= 1, got {n_background}")
    bg = bg_df.sample(min(n_background, len(bg_df)), random_state=seed)
    if not hasattr(est, "feature_names_in_"):
        bg = whybox.sample(bg, n_background, seed=seed)
    return est, df, idx, bg


def _check_row(row: int, df) -> None:
    if not 0 <= row < len(df):
        raise WhyboxError(f"--row {row} is out of range: DATA has {len(df)} rows")


def _write_json(path: Path, summary: dict) -> None:
    from whybox.core.explanation import atomic_write_text
    atomic_write_text(path, json.dumps(summary, indent=1, default=str))


def _target(target: Optional[str]) -> Any:
    """--target as typed: read as a class label when the model has labels ("1" matches class 1),
    else as an output index."""
    return target


def _write_table(table, out: Optional[Path]) -> None:
    if out is None:
        return
    from whybox.core.explanation import atomic_write_text
    if str(out).endswith(".csv"):
        atomic_write_text(out, table.to_csv())
    elif str(out).endswith(".json"):
        atomic_write_text(out, table.reset_index().to_json(orient="records", indent=1))
    else:
        raise WhyboxError(f"unknown table format {out}: use .csv or .json")


def _render(table, title: str, cols: list[str]) -> Table:
    t = Table(title=title)
    t.add_column(table.index.name or "")
    for c in cols:
        t.add_column(c, justify="right")
    for name, row in table.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, float):
                lo, hi = row.get(f"{c}_lo"), row.get(f"{c}_hi")
                half = (hi - lo) / 2 if lo is not None and lo == lo else None
                cells.append(f"{v:.4g}" + (f" ± {half:.2g}" if half is not None else ""))
            else:
                cells.append(str(v))
        t.add_row(str(name), *cells)
    return t


@app.command()
def explain(model: Path = MODEL_ARG, data: Path = DATA_ARG,
            rows: Optional[str] = typer.Option(None, help="Rows to explain, e.g. 0:10, 5 or 1,4,9 (default: all)."),
            method: str = typer.Option("kernelshap", help="Attribution method (or 'auto')."),
            background: Optional[Path] = typer.Option(None, help="CSV/Parquet of background rows (default: DATA)."),
            n_background: int = typer.Option(50, help="Rows sampled from the background data."),
            out: Path = typer.Option(Path("explanation.json"), help="Output file: .json, .parquet or .html."),
            target: Optional[str] = typer.Option(None, help="Output/class to explain: a class label, 'predicted', or 'all' (default: a binary "
                                 "classifier's positive class; every output of a multiclass model)."),
            drop: List[str] = typer.Option([], help="Column(s) of DATA that are not model inputs (e.g. the label)."),
            seed: int = typer.Option(0, help="Random seed."),
            budget: Optional[int] = typer.Option(None, help="Maximum number of model rows to spend."),
            param: List[str] = typer.Option([], help="Method parameter name=value (repeatable), e.g. n_samples=512."),
            trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models (runs code from the file)."),
            trusted: List[str] = TRUSTED_OPT,
            chunk_size: int = typer.Option(256, help="Rows per chunk for .parquet output (each chunk is saved as it finishes)."),
            resume: bool = typer.Option(False, help="Continue an interrupted .parquet run (same settings), skipping finished chunks."),
            executor: str = typer.Option("local", help="local, or dask (chunks run on a dask.distributed cluster)."),
            scheduler: Optional[str] = typer.Option(None, help="Dask scheduler address, e.g. tcp://host:8786 (default: a LocalCluster)."),
            progress: bool = typer.Option(True, help="Show a progress bar for .parquet runs."),
            ) -> None:
    """Explain rows of DATA with MODEL and write the explanation to --out.

    With a .parquet output, every row of DATA (or --rows) is explained chunk by chunk; finished
    chunks are written atomically, so a killed run continues with --resume and the final file equals
    an uninterrupted run with the same seed."""
    import hashlib

    import numpy as np
    import whybox

    est, df, idx, bg = _load_inputs(model, data, rows, drop, background, n_background, seed, trust_pickle, trusted)
    kwargs = dict(method=method, background=bg, seed=seed, budget=budget, target=_target(target), **_parse_params(param))
    if str(out).endswith(".parquet"):
        model_id = hashlib.sha256(Path(model).read_bytes()).hexdigest()[:16]
        e = whybox.explain_dataset(est, df.iloc[idx], out, resume=resume, chunk_size=chunk_size, executor=executor,
                                   scheduler=scheduler, progress=progress, model_id=model_id, row_ids=idx, **kwargs)
        if e.params.get("resumed_chunks"):
            console.print(f"resumed: {e.params['resumed_chunks']} chunk(s) were already done")
    else:
        if resume:
            raise WhyboxError("--resume applies to .parquet outputs (chunked runs)")
        e = whybox.explain(est, df.iloc[idx], executor=None if executor == "local" else executor,
                           scheduler=scheduler, rows_per_task=chunk_size, **kwargs)
        e.row_ids = np.asarray(idx)
        e.save(out)
    console.print(_top_table(f"row {idx[0]}: top features", [e], 0))
    console.print(f"{len(e)} row(s) explained with {e.method}: {e.n_model_rows:,} model rows, "
                  f"{e.seconds:.2f} s -> {out}")


@app.command()
def evaluate(model: Path = MODEL_ARG, data: Path = DATA_ARG,
             explanation: List[Path] = typer.Option([], help="Explanation JSON/Parquet file(s) to score (their rows are taken from DATA)."),
             methods: Optional[str] = typer.Option(None, help="Comma-separated methods to explain and score."),
             metrics: str = typer.Option("pgi,pgu,fidelity", help="Comma-separated metrics: pgi, pgu, pgi_auc, pgu_auc, fidelity, nmse, r2, deletion, insertion, infidelity, ris, ros, rrs, sensitivity, FA, RA, SA, SRA, RC, PRA."),
             rows: Optional[str] = typer.Option(None, help="Rows of DATA for --methods (default: all)."),
             neighbourhood: str = typer.Option("removal", help="Neighbourhood for fidelity/infidelity: removal, removal(p), gaussian(sigma)."),
             k: Optional[int] = typer.Option(None, help="Top-k for PGI/PGU/agreement (default ceil(d/4))."),
             background: Optional[Path] = typer.Option(None, help="CSV/Parquet of background rows (default: DATA)."),
             n_background: int = typer.Option(50, help="Rows sampled from the background data."),
             drop: List[str] = typer.Option([], help="Column(s) of DATA that are not model inputs."),
             seed: int = typer.Option(0, help="Random seed."),
             out: Optional[Path] = typer.Option(None, help="Write the table to .csv or .json."),
             trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
             trusted: List[str] = TRUSTED_OPT,
             ) -> None:
    """Score explanations (files, or methods run here) with faithfulness/stability/agreement metrics."""
    import whybox
    from whybox import Explanation

    if not explanation and not methods:
        raise WhyboxError("give explanation file(s) with --explanation or methods with --methods")
    est, df, idx, bg = _load_inputs(model, data, rows, drop, background, n_background, seed, trust_pickle, trusted)
    metric_list = [m.strip() for m in metrics.split(",") if m.strip()]
    tables = []
    if explanation:
        loaded = {}
        for pth in explanation:
            e = Explanation.from_parquet(pth) if str(pth).endswith(".parquet") else Explanation.from_json(pth)
            loaded[pth.stem] = e
        ids = {tuple(e.row_ids.tolist()) for e in loaded.values()}
        if len(ids) != 1:
            raise WhyboxError("explanation files cover different rows; score them separately")
        sel = list(next(iter(ids)))
        if max(sel) >= len(df):
            raise WhyboxError(f"explanations refer to row {max(sel)} but DATA has {len(df)} rows")
        tables.append(whybox.evaluate(est, df.iloc[sel], loaded, metrics=metric_list, background=bg, k=k,
                                      seed=seed, neighbourhood=neighbourhood))
    if methods:
        tables.append(whybox.evaluate(est, df.iloc[idx], [m.strip() for m in methods.split(",") if m.strip()],
                                      metrics=metric_list, background=bg, k=k, seed=seed, neighbourhood=neighbourhood))
    import pandas as pd
    table = pd.concat(tables)
    console.print(_render(table, "evaluation (mean ± 95% CI half-width over rows)", ["method", *metric_list, "explain_rows"]))
    _write_table(table, out)


@app.command()
def choose(model: Path = MODEL_ARG, data: Path = DATA_ARG,
           neighbourhood: str = typer.Option("removal", help="What 'nearby' means: removal, removal(p), gaussian(sigma)."),
           candidates: Optional[str] = typer.Option(None, help="Comma-separated methods (default: all that apply)."),
           metric: str = typer.Option("fidelity", help="fidelity, nmse, r2, infidelity, pgi, pgu, deletion or insertion."),
           rows: Optional[str] = typer.Option(None, help="Rows of DATA (default: all)."),
           budget: Optional[int] = typer.Option(None, help="Total model rows, shared equally by the candidates."),
           background: Optional[Path] = typer.Option(None, help="CSV/Parquet of background rows (default: DATA)."),
           n_background: int = typer.Option(50, help="Rows sampled from the background data."),
           drop: List[str] = typer.Option([], help="Column(s) of DATA that are not model inputs."),
           seed: int = typer.Option(0, help="Random seed."),
           out: Optional[Path] = typer.Option(None, help="Write the winner's explanation (.json, .parquet, .html)."),
           table: Optional[Path] = typer.Option(None, help="Write the ranking to .csv or .json."),
           trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
           trusted: List[str] = TRUSTED_OPT,
           ) -> None:
    """Rank explanation methods by faithfulness in your neighbourhood and keep the winner."""
    import numpy as np
    import whybox

    est, df, idx, bg = _load_inputs(model, data, rows, drop, background, n_background, seed, trust_pickle, trusted)
    cands = [c.strip() for c in candidates.split(",")] if candidates else None
    res = whybox.choose(est, df.iloc[idx], neighbourhood=neighbourhood, candidates=cands, metric=metric,
                        budget=budget, seed=seed, background=bg)
    rk = res.ranking.set_index("method")
    rk = rk.rename(columns={"score": metric, "lo": f"{metric}_lo", "hi": f"{metric}_hi"})
    console.print(_render(rk, f"methods ranked by {metric} in {res.neighbourhood}", [metric, "explain_rows", "eval_rows", "status"]))
    console.print(f"winner: [bold]{res.winner}[/bold]")
    if out is not None:
        res.explanation.row_ids = np.asarray(idx)
        res.explanation.save(out)
    _write_table(rk, table)


def _pairs(items: List[str], what: str) -> dict[str, str]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise WhyboxError(f"{what} must look like feature=value, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@app.command()
def counterfactual(model: Path = MODEL_ARG, data: Path = DATA_ARG,
                   row: int = typer.Option(0, help="Row of DATA to change."),
                   k: int = typer.Option(4, help="How many counterfactuals."),
                   desired: str = typer.Option("opposite", help="Desired class (label or index), or 'opposite'."),
                   desired_range: Optional[str] = typer.Option(None, help="For regressors: LOW:HIGH of the output."),
                   vary: List[str] = typer.Option([], help="Feature that may change (repeatable; default all)."),
                   immutable: List[str] = typer.Option([], help="Feature that must not change (repeatable)."),
                   range_: List[str] = typer.Option([], "--range", help="feature=LOW:HIGH (numeric) or feature=a|b|c (categorical)."),
                   monotone: List[str] = typer.Option([], help="feature=increase or feature=decrease."),
                   drop: List[str] = typer.Option([], help="Column(s) of DATA that are not model inputs (e.g. the label)."),
                   seed: int = typer.Option(0, help="Random seed."),
                   budget: Optional[int] = typer.Option(None, help="Maximum number of model rows to spend."),
                   trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
                   trusted: List[str] = TRUSTED_OPT,
                   out: Optional[Path] = typer.Option(None, help="Write the counterfactual set as .json or .csv."),
                   ) -> None:
    """What would have to change in one row for a different answer: diverse, sparse, plausible
    counterfactuals that respect the constraints (DATA gives scales, categories and real donors)."""
    from whybox.counterfactuals import counterfactuals as run

    est, df = _model_and_table(model, data, drop, trust_pickle, trusted)
    _check_row(row, df)
    ranges: dict[str, Any] = {}
    for f, v in _pairs(range_, "--range").items():
        if ":" in v:
            lo, hi = v.split(":", 1)
            try:
                ranges[f] = (float(lo), float(hi))
            except ValueError:
                raise WhyboxError(f"--range {f}={v}: LOW and HIGH must be numbers") from None
        else:
            col = df[f] if f in df.columns else None
            vals = v.split("|")
            if col is not None and __import__("pandas").api.types.is_numeric_dtype(col):
                vals = [float(x) for x in vals]
            ranges[f] = vals
    dr = None
    if desired_range is not None:
        try:
            dr = tuple(float(x) for x in desired_range.split(":", 1))
        except ValueError:
            raise WhyboxError(f"--desired-range must be LOW:HIGH, got {desired_range!r}") from None
    want: Any = _target(desired) if desired != "opposite" else "opposite"
    cs = run(est, df.iloc[[row]], data=df, k=k, desired_class=want, desired_range=dr,
             features_to_vary=list(vary) or "all", immutable=list(immutable), permitted_range=ranges,
             monotone=_pairs(monotone, "--monotone"), seed=seed, budget=budget)
    console.print(f"row {row}: {len(cs)} counterfactual(s) for {cs.desired}")
    for line in cs.describe():
        console.print("  " + line, markup=False, highlight=False)
    if cs.reason:
        console.print(f"[yellow]{cs.reason}[/yellow]")
    m = cs.metrics
    console.print(f"validity {m['validity']:.2f}, mean features changed {m['sparsity']:.2f}, proximity {m['proximity']:.3g}, "
                  f"diversity {m['diversity']:.3g}, plausibility {m['plausibility']:.3g}; {cs.n_model_rows:,} model rows, {cs.seconds:.2f} s")
    if out is not None:
        if str(out).endswith(".json"):
            cs.to_json(out)
        elif str(out).endswith(".csv"):
            from whybox.core.explanation import atomic_write_text
            atomic_write_text(out, cs.to_frame().to_csv(index=False))
        else:
            raise WhyboxError(f"unknown output format {out}: use .json or .csv")


@app.command()
def surrogate(model: Path = MODEL_ARG, data: Path = DATA_ARG,
              kind: str = typer.Option("tree", help="tree, rules, linear or gam (gam needs whybox[gam])."),
              max_depth: int = typer.Option(3, help="Depth of a tree surrogate."),
              max_rules: int = typer.Option(8, help="Most rules of a rule list (the default rule included)."),
              max_features: int = typer.Option(5, help="Most features with a non-zero weight in a linear surrogate."),
              budget: int = typer.Option(5000, help="Model rows in all (fidelity samples included)."),
              rounds: int = typer.Option(3, help="Active rounds near where the surrogate disagrees (0: none)."),
              task: str = typer.Option("auto", help="auto, classification or regression."),
              target: Optional[str] = typer.Option(None, help="With --task regression: the output to regress (label or index)."),
              drop: List[str] = typer.Option([], help="Column(s) of DATA that are not model inputs (e.g. the label)."),
              seed: int = typer.Option(0, help="Random seed."),
              trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
              trusted: List[str] = TRUSTED_OPT,
              out: Optional[Path] = typer.Option(None, help="Write the surrogate: .json (summary), .html (page) or .skops (the estimator)."),
              ) -> None:
    """Summarise the whole MODEL as an interpretable surrogate learnt from queries around DATA, and
    say how far it can be trusted (fidelity on fresh samples, with a confidence interval)."""
    from whybox.whole import global_surrogate

    est, df = _model_and_table(model, data, drop, trust_pickle, trusted)
    s = global_surrogate(est, df, kind=kind, max_depth=max_depth, max_rules=max_rules, max_features=max_features,
                         budget=budget, rounds=rounds, task=task, target=_target(target), seed=seed)
    console.print(s.text(), markup=False, highlight=False)
    if out is None:
        return
    from whybox.core.explanation import atomic_write_text
    if str(out).endswith(".json"):
        _write_json(out, s.to_dict())
    elif str(out).endswith(".html"):
        from whybox.io.report import surrogate_html
        atomic_write_text(out, surrogate_html(s.to_dict()))
    elif str(out).endswith(".skops"):
        import skops.io as sio

        from whybox.core.explanation import atomic_write_bytes
        atomic_write_bytes(out, sio.dumps(s.estimator))
    else:
        raise WhyboxError(f"unknown output format {out}: use .json, .html or .skops")
    console.print(f"-> {out}")


@app.command()
def extract(model: Path = MODEL_ARG,
            input_spec: Path = typer.Option(..., "--input-spec", help='JSON: {"shape": [64], "low": 0, "high": 16} or '
                                            '{"features": [{"name": ..., "low": ..., "high": ...}]}.'),
            method: str = typer.Option("cabage", help="cabage, dfme or random."),
            budget: int = typer.Option(20000, help="Victim rows to spend on extraction."),
            response: str = typer.Option("auto", help="auto, probabilities or labels (use only the arg-max)."),
            n_classes: Optional[int] = typer.Option(None, help="Number of classes, when known (labels: discovered otherwise)."),
            test_data: Optional[Path] = typer.Option(None, help="CSV/Parquet rows to measure the clone's agreement on."),
            label: Optional[str] = typer.Option(None, help="Column of --test-data with the true labels (then dropped)."),
            batch_size: int = typer.Option(256, help="Victim rows per round."),
            seed: int = typer.Option(0, help="Random seed."),
            trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
            trusted: List[str] = TRUSTED_OPT,
            out: Path = typer.Option(Path("clone.pt"), help="The clone's state dict and metadata (.pt)."),
            curve: Optional[Path] = typer.Option(None, help="Write the query curve as .csv or .json."),
            ) -> None:
    """Extract a clone of the classifier MODEL from queries alone, knowing only its inputs' ranges
    (data-free; for auditing models you are allowed to query)."""
    from whybox.io.files import load_model, load_table
    from whybox.whole import InputSpec
    from whybox.whole import extract as run

    est = load_model(model, trust_pickle=trust_pickle, trusted=list(trusted or ()))
    spec = InputSpec.load(input_spec)
    Xt = yt = None
    if test_data is not None:
        df = load_table(test_data)
        if label is not None:
            if label not in df.columns:
                raise WhyboxError(f"--label {label!r} is not a column of {test_data}: {list(df.columns)}")
            yt = df.pop(label).to_numpy()
        Xt = df.to_numpy(dtype=float)
    elif label is not None:
        raise WhyboxError("--label needs --test-data")
    e = run(est, spec, method=method, budget=budget, response=response, n_classes=n_classes, test_data=Xt,
            test_labels=yt, batch_size=batch_size, seed=seed)
    for _, r in e.curve.iterrows():
        acc = "" if r["accuracy"] != r["accuracy"] else f", accuracy {r['accuracy']:.3f}"
        agr = "" if r["agreement"] != r["agreement"] else f": agreement {r['agreement']:.3f}"
        console.print(f"{int(r['queries']):>9,} queries{agr}{acc} ({int(r['n_classes'])} classes)")
    console.print(f"{e.method}: {e.n_queries:,} victim rows (+{e.evaluation_queries:,} for evaluation), "
                  f"{e.n_classes} classes, generator gradient: {e.gradient}; {e.seconds:.1f} s", markup=False)
    e.save(out)
    if curve is not None:
        from whybox.core.explanation import atomic_write_text
        if str(curve).endswith(".csv"):
            atomic_write_text(curve, e.curve.to_csv(index=False))
        elif str(curve).endswith(".json"):
            _write_json(curve, e.to_dict())
        else:
            raise WhyboxError(f"unknown curve format {curve}: use .csv or .json")
    console.print(f"-> {out}")


@app.command("anchor")
def anchor_cmd(model: Path = MODEL_ARG, data: Path = DATA_ARG,
               row: int = typer.Option(0, help="Row of DATA to explain."),
               threshold: float = typer.Option(0.95, help="Precision the rule must reach, in (0, 1]."),
               budget: int = typer.Option(20000, help="Model rows to spend."),
               beam_size: int = typer.Option(2, help="Anchors kept per size in the beam search."),
               drop: List[str] = typer.Option([], help="Column(s) of DATA that are not model inputs (e.g. the label)."),
               seed: int = typer.Option(0, help="Random seed."),
               trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
               trusted: List[str] = TRUSTED_OPT,
               composite: bool = typer.Option(False, help="Also LIME, the decision boundary and the prototypes, together."),
               out: Optional[Path] = typer.Option(None, help="Write the anchor (or the composite) as .json, or the "
                                                  "composite as .html."),
               ) -> None:
    """The anchor of one row: a rule on its features under which the model keeps its answer with
    precision >= --threshold (Ribeiro et al. 2018); says plainly when no rule reaches it. With
    --composite, the four explanations of the row together (Hase & Bansal's Composite)."""
    import whybox

    est, df = _model_and_table(model, data, drop, trust_pickle, trusted)
    _check_row(row, df)
    from whybox.core.explanation import atomic_write_text
    if composite:
        from whybox.anchors.composite import composite as run
        c = run(est, df.iloc[[row]], df, seed=seed, budget=budget)
        console.print(c.text(), markup=False, highlight=False)
        if out is not None:
            if str(out).endswith(".html"):
                from whybox.io.report import composite_html
                atomic_write_text(out, composite_html(c.to_dict(), rows=df))
            elif str(out).endswith(".json"):
                _write_json(out, c.to_dict())
            else:
                raise WhyboxError(f"unknown output format {out}: use .json or .html")
        return
    a = whybox.anchor(est, df.iloc[[row]], df, threshold=threshold, budget=budget, beam_size=beam_size, seed=seed)
    console.print(a.text(), markup=False, highlight=False)
    if out is not None:
        if not str(out).endswith(".json"):
            raise WhyboxError(f"unknown output format {out}: use .json (or --composite with .html)")
        _write_json(out, a.to_dict())


@app.command("prototypes")
def prototypes_cmd(model: Path = MODEL_ARG, data: Path = DATA_ARG,
                   row: Optional[int] = typer.Option(None, help="Row of DATA: its local prototypes (default: per class)."),
                   n_prototypes: int = typer.Option(3, help="Prototypes per class."),
                   n_criticisms: int = typer.Option(2, help="Criticisms per class (global only)."),
                   drop: List[str] = typer.Option([], help="Column(s) of DATA that are not model inputs (e.g. the label)."),
                   seed: int = typer.Option(0, help="Random seed."),
                   trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
                   trusted: List[str] = TRUSTED_OPT,
                   out: Optional[Path] = typer.Option(None, help="Write the prototype rows as .csv or .json."),
                   ) -> None:
    """Prototypes and criticisms (MMD-critic) of DATA as MODEL sees it: per class, or for one row."""
    from whybox.anchors.prototypes import prototypes

    est, df = _model_and_table(model, data, drop, trust_pickle, trusted)
    x = None
    if row is not None:
        _check_row(row, df)
        x = df.iloc[[row]]
    p = prototypes(est, df, x=x, n_prototypes=n_prototypes, n_criticisms=n_criticisms if x is None else 0, seed=seed)
    for cls, idx in p.prototypes.items():
        console.print(f"class {cls!r}: prototypes {idx}" + (f", criticisms {p.criticisms.get(cls)}"
                                                              if p.criticisms.get(cls) else ""), markup=False)
        console.print(df.iloc[idx].to_string(max_cols=12), markup=False, highlight=False)
    if out is not None:
        from whybox.core.explanation import atomic_write_text
        rows = df.iloc[[i for v in p.prototypes.values() for i in v]].assign(
            **{"class": [c for c, v in p.prototypes.items() for _ in v]})
        if str(out).endswith(".csv"):
            atomic_write_text(out, rows.to_csv())
        elif str(out).endswith(".json"):
            _write_json(out, p.to_dict())
        else:
            raise WhyboxError(f"unknown output format {out}: use .csv or .json")


@app.command()
def simulate(model: Path = MODEL_ARG, data: Path = DATA_ARG,
             k: int = typer.Option(32, help="Training inputs the simulator learns from (and that are explained)."),
             n_test: int = typer.Option(100, help="Held-out test inputs."),
             kinds: str = typer.Option("lime,anchor,prototype,boundary,composite,random", help="Explanation types."),
             tests: str = typer.Option("forward,counterfactual", help="forward and/or counterfactual."),
             drop: List[str] = typer.Option([], help="Column(s) of DATA that are not model inputs (e.g. the label)."),
             seed: int = typer.Option(0, help="Random seed."),
             trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
             trusted: List[str] = TRUSTED_OPT,
             out: Optional[Path] = typer.Option(None, help="Write the table as .csv or .json."),
             ) -> None:
    """Which explanation helps a simulator predict MODEL (binary classifier, numeric DATA)? Forward and
    counterfactual simulatability with learned simulators: accuracy per phase, gain with a paired
    bootstrap CI, NSG, counterfactual precision/generality."""
    from whybox.simulate import simulatability

    est, df = _model_and_table(model, data, drop, trust_pickle, trusted)
    r = simulatability(est, df, kinds=[c.strip() for c in kinds.split(",") if c.strip()],
                       tests=[t.strip() for t in tests.split(",") if t.strip()], k=k, n_test=n_test, seed=seed)
    console.print(r.text(), markup=False, highlight=False)
    _write_table(r.table.set_index(["test", "method"]), out)


def _cebab_or_table(ref: str):
    if ref.startswith("cebab:"):
        from whybox.counterfactuals.cebab import load_cebab
        return load_cebab(ref.split(":", 1)[1])
    from whybox.io.files import load_table
    return load_table(ref)


@app.command("counterfactual-text")
def counterfactual_text(model: str = typer.Argument(..., help="Text classifier: a .skops pipeline on raw strings (a "
                                                    "pickle with --trust-pickle), or tfidf-cebab (built-in, 5-class CEBaB)."),
                        text: str = typer.Argument(..., help="The text whose concept is changed."),
                        concept: str = typer.Option(..., help="The concept to change, e.g. food."),
                        value: str = typer.Option(..., help="Its new value, e.g. Negative."),
                        llm: Optional[str] = LLM_URL, llm_model: Optional[str] = typer.Option(None, "--model", help="LLM that writes the counterfactual."),
                        timeout: Optional[float] = LLM_TIMEOUT, no_cache: bool = LLM_NO_CACHE,
                        match: Optional[str] = typer.Option(None, help="Estimate by matching instead: the candidate pool, "
                                                            "cebab:train_exclusive or a CSV/Parquet with a text column and concept columns."),
                        train: str = typer.Option("cebab:train_inclusive", help="Rows (with edits) that train the matching space."),
                        k: int = typer.Option(10, help="Top-K candidates averaged (matching)."),
                        mode: str = typer.Option("head", help="Matching space: head (trained projection) or none (plain MiniLM)."),
                        trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
                        trusted: List[str] = TRUSTED_OPT,
                        ) -> None:
    """How would the model's prediction change if CONCEPT of TEXT became VALUE, all else equal? By an
    LLM-written counterfactual (--llm/--model) or by matching similar texts with that value (--match)."""
    if model == "tfidf-cebab":
        from whybox.counterfactuals.cebab import load_cebab
        from whybox.datasets import tfidf_classifier
        inc = load_cebab("train_inclusive")
        inc = inc[inc["label"].notna()]
        clf = tfidf_classifier(inc["text"].tolist(), inc["label"].astype(int).to_numpy())
    else:
        from whybox.io.files import load_model
        clf = load_model(model, trust_pickle=trust_pickle, trusted=list(trusted or ()))
    from whybox.models.text import as_text_model
    m = as_text_model(clf)
    names = m.output_names or list(range(m(["x"]).shape[1]))
    if match is not None:
        from whybox.counterfactuals.text import ConceptMatcher
        pool = _cebab_or_table(match)
        if "text" not in pool.columns or concept not in pool.columns:
            raise WhyboxError(f"the candidate pool needs columns 'text' and {concept!r}; it has {list(pool.columns)}")
        mt = ConceptMatcher(concept, k=k, mode=mode)
        if mode != "none":
            mt.fit(_cebab_or_table(train))
        eff = mt.effects(m, [text], value, pool)[0]
        how = f"matching: mean over the {min(k, int((pool[concept] == value).sum()))} nearest texts with {concept} = {value}"
        cf_text = None
    else:
        from whybox.counterfactuals.text import LLMEditor
        ed = LLMEditor(_llm_client(llm, llm_model, timeout, None, no_cache))
        (cf_text,), eff = ed.effects(m, [text], concept, value)
        eff = eff[0]
        how = f"LLM edit by {ed.client.model}"
    fx = m([text])[0]
    if cf_text is not None:
        console.print(f"counterfactual: {cf_text}", markup=False, highlight=False)
    console.print(f"effect of {concept} -> {value} ({how}):")
    for n, a, e in zip(names, fx, eff):
        console.print(f"  {str(n):>10}: {a:.3f} -> {a + e:.3f} ({e:+.3f})")


BUILTIN_TEXT_MODELS = ("tfidf-rt", "minilm-rt")


def _text_model(model: str, trust_pickle: bool, n_train: Optional[int], trusted: List[str] = ()):
    """A model file (.skops, or a pickle with --trust-pickle), or a built-in trained on rt-polarity."""
    if model in BUILTIN_TEXT_MODELS:
        import numpy as np

        from whybox.datasets import load_rt_polarity, tfidf_classifier

        names = ["neg", "pos"]
        if n_train is None:
            n_train = None if model == "tfidf-rt" else 2000
        texts, y = load_rt_polarity("train", n=n_train)
        if model == "tfidf-rt":
            return tfidf_classifier(texts, np.asarray(names)[y])
        from whybox.models.minilm import train_minilm_classifier
        return train_minilm_classifier(texts, y, output_names=names)
    from whybox.io.files import load_model
    return load_model(model, trust_pickle=trust_pickle, trusted=list(trusted or ()))


@app.command("explain-text")
def explain_text(model: str = typer.Argument(..., help="Text classifier: a .skops file (or .joblib/.pkl with "
                                             "--trust-pickle) of a pipeline taking raw strings, or a built-in "
                                             "trained on rt-polarity: tfidf-rt, minilm-rt."),
                 text: Optional[str] = typer.Argument(None, help="The text to explain (or use --file)."),
                 file: Optional[Path] = typer.Option(None, "--file", help="A UTF-8 file with one text per line."),
                 method: str = typer.Option("kernelshap", help="lime, kernelshap, shapley, occlusion; on minilm-rt "
                                            "also gradient, gradxinput, smoothgrad, integrated_gradients."),
                 units: str = typer.Option("word", help="word, token (the model tokenizer's) or sentence."),
                 removal: str = typer.Option("delete", help="delete, mask or replace (a removed unit's fate)."),
                 mask_token: Optional[str] = typer.Option(None, help="Token used by --removal mask."),
                 replacement: Optional[str] = typer.Option(None, help="Neutral string used by --removal replace."),
                 target: Optional[str] = typer.Option(None, help="Class to explain: a label or 'predicted' (default: the positive class of a binary "
                                 "classifier, else the predicted one)."),
                 out: Optional[Path] = typer.Option(None, help="Write .html (token heatmap) or .json (a list of explanations)."),
                 seed: int = typer.Option(0, help="Random seed."),
                 budget: Optional[int] = typer.Option(None, help="Maximum number of model rows to spend."),
                 param: List[str] = typer.Option([], help="Method parameter name=value (repeatable), e.g. n_samples=500."),
                 trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models (runs code from the file)."),
                 trusted: List[str] = TRUSTED_OPT,
                 n_train: Optional[int] = typer.Option(None, help="Training sentences for the built-in models "
                                                       "(default: all 7,511 for tfidf-rt, 2,000 for minilm-rt)."),
                 ) -> None:
    """Explain a text classifier's prediction word by word: a coloured rendering in the terminal,
    and optionally an HTML heatmap or JSON."""
    import whybox
    from whybox.io.text_render import render_text_rich, write_text_html

    if (text is None) == (file is None):
        raise WhyboxError("give exactly one of TEXT or --file")
    if file is not None:
        if not file.is_file():
            raise WhyboxError(f"--file not found: {file}")
        texts = [line.rstrip("\n") for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not texts:
            raise WhyboxError(f"--file {file} has no non-empty lines")
    else:
        texts = [text]
    clf = _text_model(model, trust_pickle, n_train, trusted)
    exps = whybox.explain_text(clf, texts, method=method, units=units, removal=removal, mask_token=mask_token,
                               replacement=replacement, target=_target(target), seed=seed, budget=budget,
                               **_parse_params(param))
    for i, e in enumerate(exps):
        console.print(f"[bold]text {i + 1}[/bold]: {e.target_names()[0]} = {e.predictions[0]:.4g} ({e.method}, "
                      f"{e.n_model_rows:,} model rows, {e.seconds:.2f} s)")
        console.print(render_text_rich(e))
        console.print("  top: " + ", ".join(f"{n} {v:+.3g}" for n, v in e.top_features(0, 5)))
    if out is not None:
        if str(out).endswith((".html", ".htm")):
            write_text_html(exps, out)
        elif str(out).endswith(".json"):
            from whybox.core.explanation import atomic_write_text
            atomic_write_text(out, json.dumps([json.loads(e.to_json()) for e in exps], indent=1))
        else:
            raise WhyboxError(f"unknown output format {out}: use .html or .json")
        console.print(f"-> {out}")


@app.command("explain-graph")
def explain_graph_cmd(graph: str = typer.Argument("ba-shapes", help="ba-shapes (node classification), ba-motifs "
                                                 "(graph classification) or a .pt file: a dict of tensors x, "
                                                 "edge_index (a pickled Data needs --trust-pickle)."),
                      model: Optional[Path] = typer.Option(None, help="A whole torch module saved with "
                                                          "torch.save(model) (needs --trust-pickle); default: the "
                                                          "built-in GNN trained on the data (seconds)."),
                      index: Optional[int] = typer.Option(None, help="Node to explain (node task; default: the "
                                                          "first motif node, else node 0)."),
                      graph_id: int = typer.Option(0, help="Which graph of a list to explain (graph task)."),
                      task: Optional[str] = typer.Option(None, help="node or graph (default: from the data)."),
                      method: str = typer.Option("kernelshap", help="kernelshap, lime, shapley, occlusion, saliency, "
                                                 "integrated_gradients, gnnexplainer, pgexplainer."),
                      units: str = typer.Option("edge", help="edge, node or feature."),
                      top_k: int = typer.Option(6, help="Units in the explanatory subgraph (metrics, narrative)."),
                      audience: str = typer.Option("lay", help="lay or expert narrative."),
                      out: Optional[Path] = typer.Option(None, help="A folder for explanation.json, subgraph.png "
                                                         "and report.html."),
                      seed: int = typer.Option(0, help="Random seed (data, training, method)."),
                      budget: Optional[int] = typer.Option(None, help="Maximum number of graphs to evaluate."),
                      param: List[str] = typer.Option([], help="Method parameter name=value (repeatable)."),
                      trust_pickle: bool = typer.Option(False, help="Allow loading pickled graphs/models (runs code "
                                                        "from the file)."),
                      ) -> None:
    """Explain a graph neural network's prediction for one node or one graph: the top units, the
    faithfulness metrics (fid+, fid-, characterization, GEF, motif AUROC when known), and a
    GraphXAIN narrative verified claim by claim; optionally JSON, a PNG and an HTML page."""
    import whybox.graph as wg
    from whybox.io.graph_files import load_gnn, load_graph
    from whybox.io.graph_view import draw_explanation, graph_html, save_png

    data, kind = load_graph(graph, trust_pickle=trust_pickle, seed=seed)
    task = task or kind
    if task not in ("node", "graph"):
        raise WhyboxError(f"--task must be node or graph, got {task!r}")
    if task == "graph":
        graphs = data if isinstance(data, list) else [data]
        if not 0 <= graph_id < len(graphs):
            raise WhyboxError(f"--graph-id must be in 0..{len(graphs) - 1}, got {graph_id}")
        item, idx = graphs[graph_id], None
    else:
        if isinstance(data, list):
            raise WhyboxError("a node task needs one graph, the file holds a list (use --task graph)")
        item = data
        idx = index
        if idx is None:
            mask = getattr(data, "node_mask", None)
            idx = int(mask.nonzero()[0, 0]) if mask is not None and bool(mask.any()) else 0
    if model is not None:
        gnn = load_gnn(model, trust_pickle=trust_pickle)
    elif task == "node":
        if getattr(data, "y", None) is None:
            raise WhyboxError("the built-in GNN trains on the graph's labels y; this graph has none (pass --model)")
        gnn, acc = wg.train_node_classifier(data, seed=seed)
        console.print(f"built-in GNN (GraphConv x3) trained on {graph}: test accuracy {acc['test_acc']:.3f}")
    else:
        gnn, acc = wg.train_graph_classifier(graphs, seed=seed)
        console.print(f"built-in GNN (GIN x3) trained on {graph}: test accuracy {acc['test_acc']:.3f}")
    gm = wg.GraphModel(gnn, task=task, budget=budget)
    e = wg.explain_graph(gm, item, index=idx, method=method, units=units, seed=seed, **_parse_params(param))
    what = f"node {idx}" if idx is not None else f"graph {graph_id}"
    console.print(f"[bold]{what}[/bold]: class {e.target_names()[0]}, output {e.predictions[0]:.4g} ({e.method}, "
                  f"{e.n_model_rows:,} graphs evaluated, {e.seconds:.2f} s)")
    console.print("  top: " + ", ".join(f"{n} {v:+.3g}" for n, v in e.top_features(0, top_k)))
    scores = wg.graph_scores(gm, item, e, top_k=top_k)
    console.print("  " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    narrative = None
    if units in ("edge", "node"):
        narrative = wg.narrate_graph(e, item, audience=audience, max_units=top_k)
        console.print(narrative.text)
        console.print(f"  narrative check: {narrative.supported} claims supported, {narrative.contradicted} contradicted")
    if out is not None:
        from whybox.core.explanation import atomic_write_text

        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "explanation.json", e.to_json())
        if units in ("edge", "node"):
            import matplotlib.pyplot as plt

            fig = draw_explanation(e, item, top_k=top_k)
            save_png(fig, out / "subgraph.png")
            plt.close(fig)
            atomic_write_text(out / "report.html", graph_html(e, item, narrative=narrative, top_k=top_k))
        console.print(f"-> {out}")


def _llm_client(llm: Optional[str], model: Optional[str], timeout: Optional[float], llm_budget: Optional[int],
                no_cache: bool):
    """An LLMClient from the CLI flags (the key only ever comes from the environment)."""
    from whybox.llm import LLMClient

    return LLMClient(llm, model, timeout=timeout, budget=llm_budget, cache=not no_cache)




@app.command("explain-code")
def explain_code_cmd(model: str = typer.Argument(..., help="A local causal LM folder (transformers, safetensors "
                                                  "weights); with --llm, the code file instead."),
                     file: Optional[Path] = typer.Argument(None, help="The code file (FILE.py)."),
                     llm: Optional[str] = typer.Option(None, help="Score with an OpenAI-compatible completions "
                                                      "endpoint at this URL (echo + logprobs) instead of a local model."),
                     llm_model: Optional[str] = typer.Option(None, "--model", help="Model name at --llm."),
                     mode: str = typer.Option("echo", help="Endpoint prompt scoring: echo or prompt_logprobs (vLLM)."),
                     agg: str = typer.Option("mean", help="Node confidence from its tokens: mean, median or min."),
                     parser: str = typer.Option("auto", help="auto, tree-sitter or ast."),
                     on_error: str = typer.Option("mark", help="Code that does not parse: mark (keep what parses) "
                                                  "or raise."),
                     max_length: Optional[int] = typer.Option(None, help="Tokens per window (default: the model's context)."),
                     batch_size: int = typer.Option(8, help="Windows per forward pass (local model)."),
                     device: Optional[str] = typer.Option(None, help="cpu, cuda, ... (local model)."),
                     trust_pickle: bool = typer.Option(False, help="Allow a model folder with pickled weights "
                                                       "(pytorch_model.bin runs code when loaded)."),
                     timeout: Optional[float] = typer.Option(None, help="LLM request timeout, seconds."),
                     llm_budget: Optional[int] = typer.Option(None, help="Most LLM requests."),
                     no_cache: bool = typer.Option(False, help="Do not use the LLM reply cache."),
                     html: Optional[Path] = typer.Option(None, help="Write the AsC-Viz page (.html)."),
                     out: Optional[Path] = typer.Option(None, help="Write tokens and nodes with confidences (.json)."),
                     ) -> None:
    """AsC-Eval and AsC-Viz of one code file: the probability MODEL gives each token, aligned to the
    syntax tree, per node and per category; the code coloured by confidence."""
    from whybox.code import EndpointLM, HFCausalLM, asc_file

    if llm is not None:
        if file is not None:
            raise WhyboxError("with --llm give only the code file (the model is --model NAME)")
        file, lm = Path(model), EndpointLM(_llm_client(llm, llm_model, timeout, llm_budget, no_cache), mode=mode)
    else:
        if file is None:
            raise WhyboxError("give MODEL (a local model folder) and FILE, or FILE with --llm URL --model NAME")
        lm = HFCausalLM(model, batch_size=batch_size, device=device, max_length=max_length, trust_pickle=trust_pickle)
    try:
        code = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WhyboxError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    asc = asc_file(lm, code, name=file.name, agg=agg, parser=parser, on_error=on_error)
    from whybox.io.code_view import render_asc_rich, write_asc_html

    console.print(render_asc_rich(asc))
    for e in asc.tree.errors[:5]:
        console.print(f"does not parse: {e}", markup=False)
    tab = asc.categories()
    t = Table(title=f"{file.name}: {agg} token probability by category ({len(asc.alignment.scores)} tokens)")
    for c in ("category", "nodes", "mean p"):
        t.add_column(c)
    for cat, r in tab.iterrows():
        t.add_row(str(cat), str(int(r["count"])), f"{r['mean']:.3f}")
    console.print(t)
    if html is not None:
        write_asc_html(asc, html)
        console.print(f"wrote {html}", markup=False)
    if out is not None:
        _write_json(out, asc.to_dict())


@app.command()
def narrate(explanation: Path = typer.Argument(..., help="Explanation file (.json or .parquet; a JSON list from explain-text works too)."),
            row: int = typer.Option(0, help="Row of the explanation to narrate."),
            audience: str = typer.Option("lay", help="lay or expert."),
            llm: Optional[str] = LLM_URL, model: Optional[str] = LLM_MODEL, timeout: Optional[float] = LLM_TIMEOUT,
            llm_budget: Optional[int] = LLM_BUDGET, no_cache: bool = LLM_NO_CACHE,
            task: str = typer.Option("", help="What the model does (for the LLM narrator)."),
            retries: int = typer.Option(2, help="LLM narratives with a contradicted claim are regenerated this many times."),
            out: Optional[Path] = typer.Option(None, help="Write the narrative and its checked claims as JSON."),
            ) -> None:
    """Tell an explanation in plain words, then check every claim of the story against the numbers.

    Without --llm/--model (or their environment variables) the deterministic template narrator is
    used. Exit code 3 when the narrative is flagged (a contradicted claim, or a broken format rule)."""
    import whybox
    from whybox.core.explanation import Explanation

    p = str(explanation)
    if not Path(p).is_file():
        raise WhyboxError(f"explanation file not found: {p}")
    if p.endswith(".parquet"):
        exp = Explanation.from_parquet(p)
    else:
        try:
            raw = json.loads(Path(p).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise WhyboxError(f"{p} is not valid JSON: {exc}") from None
        if isinstance(raw, list):
            if not raw:
                raise WhyboxError(f"{p} holds an empty list")
            if not 0 <= row < len(raw):
                raise WhyboxError(f"--row {row} is out of range: {p} holds {len(raw)} explanation(s)")
            exp, row = Explanation.from_dict(raw[row]), 0
        else:
            exp = Explanation.from_dict(raw)
    narrator: Any = "template"
    import os
    if llm or model or os.environ.get("WHYBOX_LLM_MODEL"):
        from whybox.narrative.llm import LLMNarrator
        narrator = LLMNarrator(_llm_client(llm, model, timeout, llm_budget, no_cache), task=task, retries=retries)
    n = whybox.narrate(exp, row=row, narrator=narrator, audience=audience)
    console.print(n.text)
    colour = "green" if n.ok else "red"
    console.print(f"[{colour}]{n.supported} supported, {n.contradicted} contradicted, {n.unverifiable} unverifiable "
                  f"claim(s); score {n.score:.2f}{'; FLAGGED' if n.flagged else ''}[/{colour}]")
    for c in n.claims:
        if c.status != "supported":
            console.print(f"  {c.status}: {c.kind} {c.feature or ''} stated {c.stated}, actual {c.actual}")
    for issue in n.issues:
        console.print(f"  issue: {issue}")
    if out is not None:
        _write_json(out, n.to_dict())
    if n.flagged:
        raise typer.Exit(3)


@app.command("llm-explain")
def llm_explain(model: Path = MODEL_ARG, data: Path = DATA_ARG,
                rows: Optional[str] = typer.Option("0:5", help="Rows to explain, e.g. 0:10, 5 or 1,4,9."),
                strategy: str = typer.Option("perturbation", help="perturbation, prediction, instruction or explanation."),
                k: int = typer.Option(5, help="How many top features the LLM names."),
                n_icl: int = typer.Option(16, help="Perturbations shown in context per row."),
                drop: List[str] = typer.Option([], help="Column(s) of DATA that are not model inputs."),
                llm: Optional[str] = LLM_URL, llm_model: Optional[str] = typer.Option(None, "--model", help="Model name (default: $WHYBOX_LLM_MODEL)."),
                timeout: Optional[float] = LLM_TIMEOUT, llm_budget: Optional[int] = LLM_BUDGET, no_cache: bool = LLM_NO_CACHE,
                seed: int = typer.Option(0, help="Random seed."),
                parse: str = typer.Option("strict", help="Reading the LLM's answer: strict (k distinct feature letters, "
                                          "else the row fails) or lenient (whatever letters it named)."),
                on_error: str = typer.Option("nan", help="A reply that cannot be read: nan (that row is left out of "
                                             "metrics) or raise (stop)."),
                trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
                trusted: List[str] = TRUSTED_OPT,
                out: Path = typer.Option(Path("llm_explanation.json"), help="Output file: .json, .parquet or .html."),
                ) -> None:
    """Ask an LLM which features matter (Kroeger et al. 2023's in-context strategies); the result is an
    explanation like any other (score it with `whybox evaluate --explanation`)."""
    from whybox.llm.explainer import llm_explain as run

    est, df, idx, bg = _load_inputs(model, data, rows, drop, None, 50, seed, trust_pickle, trusted)
    client = _llm_client(llm, llm_model, timeout, llm_budget, no_cache)
    e = run(est, df.iloc[idx], client=client, strategy=strategy, k=k, n_icl=n_icl, background=bg, seed=seed,
            parse=parse, on_error=on_error)
    import numpy as np
    e.row_ids = np.asarray(idx)
    e.save(out)
    failed = e.params["failed_rows"]
    ok = [i for i in range(len(e)) if i not in failed]
    if ok:
        console.print(_top_table(f"row {idx[ok[0]]}: the LLM's top features", [e], ok[0], k=min(k, 5)))
    for i in failed[:5]:
        err.print(f"row {idx[i]}: not scored ({e.params['parse_errors'][i]})", markup=False, highlight=False)
    console.print(f"{len(e)} row(s), {len(failed)} unreadable (left out of metrics); LLM usage {client.usage()}; "
                  f"{e.n_model_rows:,} model rows -> {out}")


@app.command()
def amplify(model: Path = typer.Argument(..., help="Proxy text classifier (.skops pipeline on raw strings, or tfidf-rt)."),
            data: Path = typer.Argument(..., help="CSV/Parquet of training examples."),
            query: str = typer.Argument(..., help="The text the few-shot prompt ends with."),
            text_column: str = typer.Option("text", help="Column of DATA holding the texts."),
            label_column: str = typer.Option("label", help="Column of DATA holding the labels."),
            shots: int = typer.Option(4, help="Few-shot examples (those the proxy gets most confidently wrong)."),
            top_words: int = typer.Option(4, help="Key words per rationale."),
            method: str = typer.Option("occlusion", help="Text explainer for the rationales."),
            llm: Optional[str] = LLM_URL, llm_model: Optional[str] = typer.Option(None, "--model", help="Send the prompt to this model and print its answer."),
            timeout: Optional[float] = LLM_TIMEOUT, no_cache: bool = LLM_NO_CACHE,
            trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models."),
            trusted: List[str] = TRUSTED_OPT,
            ) -> None:
    """Build an AMPLIFY few-shot prompt whose rationales come from a proxy model's attributions (and,
    with --llm/--model, send it)."""
    from whybox.io.files import load_table
    from whybox.llm.amplify import amplify_prompt

    df = load_table(data)
    for c in (text_column, label_column):
        if c not in df.columns:
            raise WhyboxError(f"DATA has no column {c!r}; it has {list(df.columns)}")
    proxy = _text_model(str(model), trust_pickle, None, trusted)
    ap = amplify_prompt(proxy, df[text_column].astype(str).tolist(), df[label_column].tolist(), query,
                        n_shots=shots, top_words=top_words, method=method)
    console.print(ap.text(), markup=False, highlight=False)
    if llm or llm_model:
        client = _llm_client(llm, llm_model, timeout, None, no_cache)
        console.print("--- answer ---")
        console.print(client.chat(ap.messages()).text, markup=False, highlight=False)


@app.command()
def serve(model: Optional[Path] = typer.Option(None, help="Model file (.skops; .joblib/.pkl with --trust-pickle)."),
          data: Optional[Path] = typer.Option(None, help="CSV/Parquet of rows to explain (with --model)."),
          label: Optional[str] = typer.Option(None, help="Column of DATA with the true labels (removed from the inputs)."),
          demo: str = typer.Option("census", help="Built-in demo when no --model: census (synthetic census-like "
                                   "income data made in code, with protected attributes, a planted proxy and a "
                                   "planted bias; no files), breast-cancer (scikit-learn's, no files) or adult "
                                   "(OpenXAI adult + its ANN, from ../shared/data)."),
          protected: List[str] = typer.Option(None, "--protected", help="A protected attribute (column) offered "
                                              "first on the fairness page (repeatable)."),
          train_data: Optional[Path] = typer.Option(None, help="CSV/Parquet of the model's training rows, with the "
                                                    "--label column: lets the fairness remedies refit a clone."),
          method: str = typer.Option("kernelshap", help="Default explanation method."),
          host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback needs --token."),
          port: int = typer.Option(8765, help="Port."),
          token: Optional[str] = typer.Option(None, help="Token required on every request (or set $WHYBOX_TOKEN); "
                                              "default: a random one, printed in the URL at start."),
          trust_pickle: bool = typer.Option(False, help="Allow a .joblib/.pkl --model (uploads never load pickles)."),
          trusted: List[str] = TRUSTED_OPT,
          max_upload_mb: float = typer.Option(50.0, help="Largest upload accepted (counted as it arrives)."),
          allowed_host: List[str] = typer.Option(None, "--allowed-host", help="Another Host name the dashboard "
                                                 "answers to, e.g. behind a proxy (repeatable)."),
          allowed_origin: List[str] = typer.Option(None, "--allowed-origin", help="Another web origin allowed to "
                                                   "send changes, e.g. https://team.example (repeatable)."),
          ) -> None:
    """Start the dashboard (overview, one row with what-if and a verified narrative, fairness) on
    http://HOST:PORT, with its JSON API (/api/...) and API docs at /docs. Every request needs the
    token in the printed URL; see docs/security.md."""
    import os

    from whybox.app.server import serve as run
    from whybox.app.state import AppState

    token = token or os.environ.get("WHYBOX_TOKEN")
    if (model is None) != (data is None):
        raise WhyboxError("give both --model and --data, or neither (the built-in demo)")
    if model is not None:
        from whybox.io.files import load_model, load_table
        est = load_model(model, trust_pickle=trust_pickle, trusted=list(trusted or ()))
        df = load_table(data)
        y = None
        if label is not None:
            if label not in df.columns:
                raise WhyboxError(f"--label {label!r} is not a column of {data}; columns: {list(df.columns)}")
            y = df.pop(label).to_numpy()
        Xtr = ytr = None
        if train_data is not None:
            if label is None:
                raise WhyboxError("--train-data needs --label (the column with the true labels in both files)")
            Xtr = load_table(train_data)
            if label not in Xtr.columns:
                raise WhyboxError(f"--label {label!r} is not a column of {train_data}; columns: {list(Xtr.columns)}")
            ytr = Xtr.pop(label).to_numpy()
        state = AppState(est, df, y, name=Path(model).name, description=f"{Path(model).name} on {Path(data).name}",
                         method=method, protected=list(protected or ()), X_train=Xtr, y_train=ytr)
    elif demo == "adult":
        from whybox.datasets import load_openxai, openxai_model
        d = load_openxai("adult", "test")
        state = AppState(openxai_model("adult", "ann"), d.X.iloc[:600], d.y[:600], name="demo: OpenXAI adult ANN",
                         description="OpenXAI adult income (min-max scaled; sex 1 = male), pretrained ANN; class 1 = income > 50K",
                         method=method)
    elif demo in ("census", "breast-cancer"):
        from whybox.app.server import demo_state
        state = demo_state(demo)
    else:
        raise WhyboxError(f"--demo must be census, breast-cancer or adult, got {demo!r}")
    run(state, host=host, port=port, token=token, trust_pickle=trust_pickle, max_upload_mb=max_upload_mb,
        allowed_host=tuple(allowed_host or ()), allowed_origin=tuple(allowed_origin or ()),
        echo=lambda msg, flush=True: (console.print(f"{msg}  (API docs: /docs; Ctrl-C stops)", markup=False,
                                                    highlight=False, soft_wrap=True), sys.stdout.flush()))


def _click_exceptions(name: str) -> tuple[type, ...]:
    """Click's exception class ``name`` as typer raises it: recent typer bundles its own copy of click
    (``typer._click``), so the installed ``click`` package's classes alone do not match."""
    found: list[type] = []
    for mod in ("typer._click.exceptions", "click.exceptions"):
        try:
            cls = getattr(__import__(mod, fromlist=[name]), name, None)
        except ImportError:
            continue
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def _fail(message: str) -> None:
    """Every CLI failure: one line on stderr, exit 2."""
    err.print(f"[bold red]error:[/bold red] {' '.join(str(message).split())}", markup=True, highlight=False,
              soft_wrap=True)
    sys.exit(2)


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point. Errors print one line (``error: ...``) and exit 2; ``WHYBOX_DEBUG=1`` shows the
    traceback of an unexpected one."""
    import os

    usage, abort = _click_exceptions("ClickException"), _click_exceptions("Abort")
    try:
        rc = app(args=argv, standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code or 0)
    except WhyboxError as exc:
        _fail(str(exc))
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        _fail(f"{exc.strerror or type(exc).__name__}: {exc.filename}")
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as exc:  # noqa: BLE001 - usage errors, then anything unexpected: one line, no traceback
        if abort and isinstance(exc, abort):           # Ctrl-C at a prompt
            _fail("aborted")
        if usage and isinstance(exc, usage):
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:   # bare 'whybox': the help
                print(ctx.get_help())
                sys.exit(0)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else " (see 'whybox --help')"
            _fail(f"{exc.format_message()}{hint}")
        if os.environ.get("WHYBOX_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set WHYBOX_DEBUG=1 for the traceback)")


if __name__ == "__main__":  # pragma: no cover
    main()
