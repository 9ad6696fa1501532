"""Whole-dataset runs: chunked = uninterrupted, kill -9 + --resume loses and repeats nothing, Dask = local."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import whybox
from whybox import Explanation
from whybox.errors import InputError


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    from sklearn.neural_network import MLPClassifier
    import skops.io as sio

    d = tmp_path_factory.mktemp("batch")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(240, 6)), columns=[f"f{i}" for i in range(6)])
    y = (df.f0 * df.f1 + df.f2 > 0).astype(int)
    mlp = MLPClassifier((16,), max_iter=500, random_state=0).fit(df, y)
    sio.dump(mlp, d / "m.skops")
    df.to_csv(d / "data.csv", index=False)
    return d, mlp, df


def test_chunked_api_equals_one_call(job, tmp_path):
    _, mlp, df = job
    bg = df.iloc[:20]
    one = whybox.explain(mlp, df.iloc[:50], method="kernelshap", background=bg, n_samples=64, seed=3)
    full = whybox.explain_dataset(mlp, df.iloc[:50], tmp_path / "r.parquet", chunk_size=7, method="kernelshap",
                                  background=bg, n_samples=64, seed=3)
    # other chunkings agree up to floating-point summation order (BLAS blocks by batch size) ...
    np.testing.assert_allclose(full.values, one.values, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(full.stderr, one.stderr, rtol=1e-9, atol=1e-15)
    # ... and the same chunking is bit-identical
    again = whybox.explain_dataset(mlp, df.iloc[:50], tmp_path / "r2.parquet", chunk_size=7, method="kernelshap",
                                   background=bg, n_samples=64, seed=3)
    np.testing.assert_array_equal(again.values, full.values)
    assert full.row_ids.tolist() == list(range(50))
    back = Explanation.from_parquet(tmp_path / "r.parquet")
    np.testing.assert_array_equal(back.values, full.values)
    assert not (tmp_path / "r.parquet.parts").exists()


def test_existing_parts_need_resume_and_same_job(job, tmp_path):
    _, mlp, df = job
    parts = tmp_path / "r.parquet.parts"
    parts.mkdir()
    (parts / "_manifest.json").write_text("{}")
    with pytest.raises(InputError, match="resume=True"):
        whybox.explain_dataset(mlp, df.iloc[:10], tmp_path / "r.parquet", method="occlusion")
    with pytest.raises(InputError, match="different job"):
        whybox.explain_dataset(mlp, df.iloc[:10], tmp_path / "r.parquet", method="occlusion", resume=True)


def _cli(*args):
    return [sys.executable, "-m", "whybox.cli", "explain", *map(str, args)]


def test_kill_minus_9_then_resume_loses_and_repeats_nothing(job, tmp_path):
    d, _, _ = job
    args = [d / "m.skops", d / "data.csv", "--method", "kernelshap", "--param", "n_samples=2000",
            "--n-background", "30", "--chunk-size", "8", "--no-progress"]
    # uninterrupted reference
    subprocess.run(_cli(*args, "--out", tmp_path / "ref.parquet"), check=True, capture_output=True, timeout=600)
    out = tmp_path / "run.parquet"
    parts = tmp_path / "run.parquet.parts"
    proc = subprocess.Popen(_cli(*args, "--out", out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(parts.glob("part-*.parquet"))) < 4:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in parts.glob("part-*.parquet")}
    assert 4 <= len(before) < 30, "the run should have been killed part-way"
    assert not out.exists()
    # no half-written part: every part file is a complete parquet
    for p in parts.glob("part-*.parquet"):
        Explanation.from_parquet(p)
    # damage three parts: truncated, empty, and one copied over another (same size, wrong rows)
    names = sorted(before)
    raw = (parts / names[0]).read_bytes()
    (parts / names[0]).write_bytes(raw[: len(raw) // 3])
    (parts / names[2]).write_bytes((parts / names[1]).read_bytes())
    (parts / names[1]).write_bytes(b"")
    r = subprocess.run(_cli(*args, "--out", out, "--resume"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and all(n in r.stderr for n in names[:3]), r.stderr
    assert f"resumed: {len(before) - 3} chunk(s) were already done" in r.stdout
    got, ref = Explanation.from_parquet(out), Explanation.from_parquet(tmp_path / "ref.parquet")
    np.testing.assert_array_equal(got.values, ref.values)
    np.testing.assert_array_equal(got.row_ids, ref.row_ids)
    assert got.params["resumed_chunks"] == len(before) - 3
    # the resumed run explained only the missing chunks: its model rows are the rest of the total
    assert got.n_model_rows == ref.n_model_rows


def test_dask_executor_equals_local(job, tmp_path):
    pytest.importorskip("dask.distributed")
    _, mlp, df = job
    bg = df.iloc[:15]
    kw = dict(method="kernelshap", background=bg, n_samples=48, seed=5)
    local = whybox.explain_dataset(mlp, df.iloc[:40], tmp_path / "l.parquet", chunk_size=9, **kw)
    dist = whybox.explain(mlp, df.iloc[:40], executor="dask", rows_per_task=9, **kw)
    np.testing.assert_array_equal(dist.values, local.values)
    np.testing.assert_array_equal(dist.row_ids, np.arange(40))
    ds = whybox.explain_dataset(mlp, df.iloc[:40], tmp_path / "d.parquet", chunk_size=9, executor="dask", **kw)
    np.testing.assert_array_equal(ds.values, local.values)
    one = whybox.explain(mlp, df.iloc[:40], **kw)
    np.testing.assert_allclose(ds.values, one.values, rtol=1e-12, atol=1e-15)


def test_bad_executor():
    with pytest.raises(InputError, match="executor must be one of"):
        whybox.explain(lambda X: X.sum(1), np.zeros((3, 2)), executor="spark")


def test_row_ids_name_the_rows(job, tmp_path):
    _, mlp, df = job
    ids = np.arange(100, 112)
    e = whybox.explain_dataset(mlp, df.iloc[:12], tmp_path / "r.parquet", chunk_size=5, method="occlusion",
                               row_ids=ids)
    assert e.row_ids.tolist() == ids.tolist()
    assert Explanation.from_parquet(tmp_path / "r.parquet").row_ids.tolist() == ids.tolist()
    with pytest.raises(InputError, match="row_ids has 3 entries for 12 rows"):
        whybox.explain_dataset(mlp, df.iloc[:12], tmp_path / "s.parquet", method="occlusion", row_ids=[1, 2, 3])
