"""The ``whybox`` command line: a face over the API that parses and renders, never computes."""
from __future__ import annotations

import json
import os
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


@app.command()
def explain(model: Path = typer.Argument(..., help="Model file: .skops (preferred) or .joblib/.pkl with --trust-pickle."),
            data: Path = typer.Argument(..., help="Rows to explain: a CSV or Parquet file."),
            rows: Optional[str] = typer.Option(None, help="Rows to explain, e.g. 0:10, 5 or 1,4,9 (default: all)."),
            method: str = typer.Option("kernelshap", help="Attribution method."),
            background: Optional[Path] = typer.Option(None, help="CSV/Parquet of background rows (default: a 50-row sample of DATA)."),
            n_background: int = typer.Option(50, help="Rows sampled from the background data."),
            out: Path = typer.Option(Path("explanation.json"), help="Output file: .json, .parquet or .html."),
            target: Optional[str] = typer.Option(None, help="Output/class to explain (default: predicted class)."),
            drop: List[str] = typer.Option([], help="Column(s) of DATA that are not model inputs (e.g. the label)."),
            seed: int = typer.Option(0, help="Random seed."),
            budget: Optional[int] = typer.Option(None, help="Maximum number of model rows to spend."),
            param: List[str] = typer.Option([], help="Method parameter name=value (repeatable), e.g. n_samples=512."),
            trust_pickle: bool = typer.Option(False, help="Allow loading .joblib/.pkl models (runs code from the file)."),
            ) -> None:
    """Explain rows of DATA with MODEL and write the explanation to --out."""
    import whybox
    from whybox.io.files import load_model, load_table, parse_rows

    est = load_model(model, trust_pickle=trust_pickle)
    df = load_table(data)
    missing = [c for c in drop if c not in df.columns]
    if missing:
        raise WhyboxError(f"--drop names unknown column(s) {missing}; DATA has {list(df.columns)}")
    df = df.drop(columns=list(drop))
    idx = parse_rows(rows, len(df))
    bg_df = load_table(background).drop(columns=[c for c in drop if c in load_table(background).columns]) \
        if background else df
    bg = whybox.sample(bg_df, n_background, seed=seed) if not hasattr(est, "feature_names_in_") else \
        bg_df.sample(min(n_background, len(bg_df)), random_state=seed)
    tgt: Any = target
    if target is not None:
        try:
            tgt = int(target)
        except ValueError:
            tgt = target
    e = whybox.explain(est, df.iloc[idx], method=method, background=bg, seed=seed, budget=budget,
                       target=tgt, **_parse_params(param))
    e.row_ids = __import__("numpy").asarray(idx)
    e.save(out)
    console.print(_top_table(f"row {idx[0]}: top features", [e], 0))
    console.print(f"{len(e)} row(s) explained with {e.method}: {e.n_model_rows:,} model rows, "
                  f"{e.seconds:.2f} s -> {out}")


def main(argv: Optional[list[str]] = None) -> None:
    try:
        app(args=argv, standalone_mode=False)
    except WhyboxError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}")
        sys.exit(2)
    except FileNotFoundError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}")
        sys.exit(2)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code or 0)
    except Exception as exc:  # click usage errors
        import click
        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
