"""Explaining whole datasets: chunks, resumable runs, and the Dask executor.

A run over many rows is split into chunks of ``chunk_size`` rows. Each chunk is explained with the
same recipe and seed; because whybox's designs never depend on the rows being explained, a row's
attribution is the same whatever chunk it falls in, so chunked, resumed and distributed runs all
equal one uninterrupted run.

:func:`explain_dataset` writes every finished chunk atomically as ``<out>.parts/part-NNNNN.parquet``
next to a manifest of the job's settings; a run killed at any moment (even ``kill -9``) resumes with
``resume=True``, skipping the chunks already on disk, and the final file is assembled atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from whybox.core.explanation import Explanation, atomic_write_text
from whybox.errors import InputError

EXECUTORS = ("local", "dask")


def concat(parts: Iterable[Explanation]) -> Explanation:
    """Stack explanations of the same recipe over different rows (in the given order)."""
    parts = list(parts)
    if not parts:
        raise InputError("nothing to concatenate")
    first = parts[0]
    for p in parts[1:]:
        if p.feature_names != first.feature_names or p.method != first.method:
            raise InputError("explanations to concatenate must share method and features")
    cat = lambda attr: None if getattr(first, attr) is None else np.concatenate([getattr(p, attr) for p in parts])
    return Explanation(values=cat("values"), base_values=cat("base_values"), predictions=cat("predictions"),
                       feature_names=list(first.feature_names), target=cat("target"), method=first.method,
                       params=dict(first.params), seed=first.seed, stderr=cat("stderr"), data=cat("data"),
                       output_names=first.output_names, n_model_rows=sum(p.n_model_rows for p in parts),
                       n_model_calls=sum(p.n_model_calls for p in parts),
                       seconds=sum(p.seconds for p in parts), row_ids=cat("row_ids"))


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    if size < 1:
        raise InputError(f"chunk_size must be >= 1, got {size}")
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def _rows(X: Any, a: int, b: int) -> Any:
    return X.iloc[a:b] if isinstance(X, pd.DataFrame) else X[a:b]


def _explain_chunk(model: Any, X: Any, start: int, kwargs: dict[str, Any]) -> Explanation:
    from whybox.explainers.run import explain_call

    e = explain_call(model, X, **kwargs)
    e.row_ids = np.arange(start, start + len(e))
    return e


def run_chunks(model: Any, X: Any, *, chunk_size: int, executor: str = "local", scheduler: str | None = None,
               skip: set[int] = frozenset(), on_result: Callable[[int, Explanation], None] | None = None,
               **explain_kwargs: Any) -> dict[int, Explanation]:
    """Explain X chunk by chunk (chunks in ``skip`` are left out); call ``on_result(i, e)`` as each
    chunk finishes (in the driver process). Returns {chunk index: Explanation}."""
    if executor not in EXECUTORS:
        raise InputError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    n = len(X)
    todo = [(i, a, b) for i, (a, b) in enumerate(_chunks(n, chunk_size)) if i not in skip]
    results: dict[int, Explanation] = {}
    if executor == "local":
        for i, a, b in todo:
            e = _explain_chunk(model, _rows(X, a, b), a, explain_kwargs)
            results[i] = e
            if on_result:
                on_result(i, e)
        return results
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError("executor='dask' needs dask.distributed: pip install 'whybox[dask]'") from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    else:
        cluster = LocalCluster(n_workers=min(2, os.cpu_count() or 1), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        # the model and the background travel to every worker once, not with every task
        model_f = client.scatter(model, broadcast=True)
        kw = dict(explain_kwargs)
        if kw.get("background") is not None:
            kw["background"] = client.scatter(kw["background"], broadcast=True)
        futures = {client.submit(_explain_chunk, model_f, _rows(X, a, b), a, kw, pure=False): i for i, a, b in todo}
        for fut in as_completed(futures):
            i = futures[fut]
            e = fut.result()
            results[i] = e
            if on_result:
                on_result(i, e)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results


def fingerprint(obj: Any) -> str:
    """A stable hash of data (DataFrame/array) for the resume manifest."""
    h = hashlib.sha256()
    if isinstance(obj, pd.DataFrame):
        h.update(",".join(map(str, obj.columns)).encode())
        h.update(pd.util.hash_pandas_object(obj, index=False).to_numpy().tobytes())
    elif obj is None:
        h.update(b"none")
    else:
        from whybox.background import Background
        if isinstance(obj, Background):
            h.update(np.ascontiguousarray(obj.weights).tobytes())
            obj = obj.data
        arr = np.asarray(obj)
        h.update(str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr.astype(str) if arr.dtype == object else arr).tobytes())
    return h.hexdigest()[:16]


def explain_dataset(model: Any, X: Any, out: str | os.PathLike, *, resume: bool = False, chunk_size: int = 256,
                    executor: str = "local", scheduler: str | None = None, progress: bool = False,
                    model_id: str | None = None, row_ids: Any = None, **explain_kwargs: Any) -> Explanation:
    """Explain every row of ``X`` and write the result to ``out`` (.parquet), chunk by chunk.

    Finished chunks are written atomically to ``<out>.parts/``; with ``resume=True`` a previous run of
    the same job (same data, background, method, parameters, seed, chunk size; checked against its
    manifest) continues where it stopped. Without ``resume`` an existing parts folder is an error.
    The final Parquet file is written atomically and the parts folder removed. ``row_ids`` (one
    per row of X) names the rows in the result; default 0..n-1.
    """
    if row_ids is not None and len(row_ids) != len(X):
        raise InputError(f"row_ids has {len(row_ids)} entries for {len(X)} rows")
    out = Path(out)
    if out.suffix != ".parquet":
        raise InputError(f"whole-dataset output must be a .parquet file, got {out}")
    parts_dir = out.with_name(out.name + ".parts")
    chunks = _chunks(len(X), chunk_size)
    kw = {k: v for k, v in explain_kwargs.items() if k != "background"}
    manifest = {"n_rows": len(X), "chunk_size": chunk_size, "n_chunks": len(chunks), "data": fingerprint(X),
                "background": fingerprint(explain_kwargs.get("background")), "model": model_id or type(model).__name__,
                "settings": json.loads(json.dumps(kw, default=str))}
    mpath = parts_dir / "_manifest.json"
    done: set[int] = set()
    if parts_dir.exists():
        if not resume:
            raise InputError(f"{parts_dir} exists from an earlier run: pass resume=True (--resume) to continue it, "
                             "or delete it to start again")
        try:
            old = json.loads(mpath.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old != manifest:
            raise InputError(f"{parts_dir} belongs to a different job (data, background, method, parameters, seed "
                             "or chunk size differ); delete it to start again")
        done = _verified_parts(parts_dir, chunks, manifest)
    else:
        parts_dir.mkdir(parents=True)
        atomic_write_text(mpath, json.dumps(manifest, indent=1))
    bar = _progress(progress, len(chunks), len(done))

    def save(i: int, e: Explanation) -> None:
        e.to_parquet(parts_dir / f"part-{i:05d}.parquet")   # atomic: temp file + rename
        if bar:
            bar.advance(e)

    t0 = time.perf_counter()
    try:
        run_chunks(model, X, chunk_size=chunk_size, executor=executor, scheduler=scheduler, skip=done,
                   on_result=save, **explain_kwargs)
    finally:
        if bar:
            bar.close()
    parts = []
    for i, (a, b) in enumerate(chunks):
        p = parts_dir / f"part-{i:05d}.parquet"
        e, why = _read_part(p, a, b)
        if e is None:       # removed or damaged while this run was going on: name it, keep the rest
            raise InputError(f"{p} {why}; run again with --resume to redo it")
        parts.append(e)
    full = concat(parts)
    full.params = {**full.params, "chunk_size": chunk_size, "resumed_chunks": len(done),
                   "run_seconds": time.perf_counter() - t0}
    if row_ids is not None:
        full.row_ids = np.asarray(row_ids)[full.row_ids]
    full.to_parquet(out)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return full


def _read_part(path: Path, a: int, b: int) -> tuple[Explanation | None, str]:
    """The part for rows a..b-1, or (None, why) when it is unreadable or holds other rows."""
    try:
        e = Explanation.from_parquet(path)
    except Exception as exc:  # noqa: BLE001 - truncated, empty or foreign files raise anything
        return None, f"is unreadable ({type(exc).__name__})"
    ids = None if e.row_ids is None else np.asarray(e.row_ids)
    if ids is None or len(e) != b - a or not np.array_equal(ids, np.arange(a, b)):
        got = "no row ids" if ids is None or not len(ids) else f"rows {int(ids.min())}..{int(ids.max())} ({len(ids)})"
        return None, f"holds {got}, not its chunk's rows {a}..{b - 1}"
    return e, ""


def _verified_parts(parts_dir: Path, chunks: list[tuple[int, int]], manifest: dict[str, Any]) -> set[int]:
    """Chunks whose part file on disk is readable and holds exactly that chunk's rows. Damaged or
    misplaced parts are removed (they will be redone), each named in a warning."""
    import re
    import warnings

    done: set[int] = set()
    for p in sorted(parts_dir.glob("part-*.parquet")):
        m = re.fullmatch(r"part-(\d{5})", p.stem)
        i = int(m.group(1)) if m else -1
        if not 0 <= i < len(chunks):
            warnings.warn(f"ignoring {p}: not a part of this job", stacklevel=3)
            continue
        e, why = _read_part(p, *chunks[i])
        if e is None:
            warnings.warn(f"redoing {p}: it {why}", stacklevel=3)
            p.unlink()
            continue
        done.add(i)
    return done


class _Bar:
    def __init__(self, total: int, done: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from whybox.core.progress import console
        self.p = Progress(TextColumn("explaining"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"),
                          TimeRemainingColumn(), transient=False, console=console())
        self.task = self.p.add_task("chunks", total=total, completed=done)
        self.p.start()

    def advance(self, e: Explanation) -> None:
        self.p.advance(self.task)

    def close(self) -> None:
        self.p.stop()


def _progress(enabled: bool, total: int, done: int):
    """A bar over the chunks, in interactive sessions only (silent in CI logs and pipes)."""
    from whybox.core.progress import check_progress, interactive

    return _Bar(total, done) if check_progress(enabled) and interactive() else None
