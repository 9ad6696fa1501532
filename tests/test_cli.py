"""The CLI end to end, as a user runs it (subprocesses)."""
import json
import os
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest

from whybox import Explanation

WHYBOX = [sys.executable, "-m", "whybox.cli"]


def run(*args, cwd=None, ok=True):
    p = subprocess.run([*WHYBOX, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300,
                       env={**os.environ, "COLUMNS": "160"})
    if ok:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "rep"
    p = run("demo", "--out", out, "--rows", "2", "--methods", "kernelshap,occlusion,integrated_gradients")
    assert "test accuracy" in p.stdout and "cost per method" in p.stdout
    for m in ("kernelshap", "occlusion", "integrated_gradients"):
        e = Explanation.from_json(out / f"{m}.json")
        assert e.values.shape == (2, 30)
        assert (out / f"{m}_row0_bar.png").stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert "<img" in html and "kernelshap" in html


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from sklearn.ensemble import RandomForestClassifier
    import skops.io as sio

    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    df["label"] = (df.a + df.b > 0).astype(int)
    rf = RandomForestClassifier(n_estimators=10, random_state=0).fit(df[["a", "b", "c", "d"]], df.label)
    sio.dump(rf, d / "rf.skops")
    joblib.dump(rf, d / "rf.joblib")
    df.to_csv(d / "data.csv", index=False)
    df.to_parquet(d / "data.parquet")
    return d


@pytest.mark.parametrize("ext", ["json", "parquet", "html"])
def test_explain_skops_model(files, tmp_path, ext):
    out = tmp_path / f"e.{ext}"
    p = run("explain", files / "rf.skops", files / "data.csv", "--rows", "0:3", "--drop", "label",
            "--method", "kernelshap", "--n-background", "20", "--param", "n_samples=64", "--out", out)
    assert "3 row(s) explained with kernelshap" in p.stdout
    if ext == "json":
        e = Explanation.from_json(out)
        assert e.values.shape == (3, 4) and e.params["n_samples"] == 64
        assert e.row_ids.tolist() == [0, 1, 2]
    elif ext == "parquet":
        assert Explanation.from_parquet(out).values.shape == (3, 4)
    else:
        assert out.read_text().startswith("<!doctype html>")


def test_pickle_needs_trust(files, tmp_path):
    p = run("explain", files / "rf.joblib", files / "data.parquet", "--drop", "label", "--rows", "1",
            "--out", tmp_path / "e.json", ok=False)
    assert p.returncode == 2 and "--trust-pickle" in p.stderr and "Traceback" not in p.stderr
    run("explain", files / "rf.joblib", files / "data.parquet", "--drop", "label", "--rows", "1",
        "--method", "occlusion", "--trust-pickle", "--out", tmp_path / "e.json")
    assert json.loads((tmp_path / "e.json").read_text())["method"] == "occlusion"


@pytest.mark.parametrize("args,msg", [
    (["--rows", "500"], "out of range"),
    (["--method", "nope"], "unknown method 'nope'"),
    (["--drop", "zzz"], "unknown column"),
    (["--param", "n_samples"], "name=value"),
])
def test_explain_bad_input_is_a_clear_error(files, tmp_path, args, msg):
    base = ["explain", files / "rf.skops", files / "data.csv", "--out", tmp_path / "e.json"]
    if "--drop" not in args:
        base += ["--drop", "label"]
    p = run(*base, *args, ok=False)
    assert p.returncode == 2, p.stderr
    assert msg in p.stderr and "Traceback" not in p.stderr


def test_missing_model_column(files, tmp_path):
    p = run("explain", files / "rf.skops", files / "data.csv", "--out", tmp_path / "e.json", ok=False)
    # 'label' was not dropped: the model knows which columns it was fitted on and takes those
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("cmd", [[], ["demo"], ["explain"], ["surrogate"], ["extract"], ["anchor"]])
def test_help(cmd):
    p = run(*cmd, "--help")
    assert "Usage" in p.stdout


class Untrusted:  # a type skops does not know: loading must be refused
    def predict(self, X):
        return X[:, 0]


def test_skops_file_with_untrusted_type_is_refused(tmp_path):
    import skops.io as sio
    from sklearn.pipeline import FunctionTransformer, make_pipeline
    from sklearn.linear_model import LinearRegression

    from whybox import InputError
    from whybox.io.files import load_model

    pipe = make_pipeline(FunctionTransformer(func=np.log1p), LinearRegression())
    pipe.fit(np.abs(np.random.default_rng(0).normal(size=(20, 2))), np.arange(20))
    pipe.steps[1][1].extra = Untrusted()
    sio.dump(pipe, tmp_path / "m.skops")
    with pytest.raises(InputError, match="does not trust.*Untrusted"):
        load_model(tmp_path / "m.skops")
    with pytest.raises(InputError, match="unknown model file type"):
        load_model(__file__)


def test_choose_and_evaluate_commands(files, tmp_path):
    out = tmp_path / "winner.json"
    table = tmp_path / "rank.csv"
    p = run("choose", files / "rf.skops", files / "data.csv", "--drop", "label", "--rows", "0:4",
            "--candidates", "kernelshap,occlusion,lime", "--n-background", "10", "--out", out, "--table", table)
    assert "winner:" in p.stdout
    ranking = pd.read_csv(table)
    assert set(ranking.method) == {"kernelshap", "occlusion", "lime"} and "fidelity" in ranking.columns
    winner = Explanation.from_json(out)
    assert winner.method == ranking.method.iloc[0] and winner.row_ids.tolist() == [0, 1, 2, 3]
    ev = tmp_path / "ev.json"
    p = run("evaluate", files / "rf.skops", files / "data.csv", "--drop", "label", "--explanation", out,
            "--methods", "occlusion", "--rows", "0:4", "--metrics", "pgi,pgu,deletion", "--n-background", "10",
            "--out", ev)
    recs = json.loads(ev.read_text())
    assert [r["method"] for r in recs] == [winner.method, "occlusion"]
    assert all(r["pgi_lo"] <= r["pgi"] <= r["pgi_hi"] for r in recs)


def test_evaluate_needs_something_to_score(files):
    p = run("evaluate", files / "rf.skops", files / "data.csv", "--drop", "label", ok=False)
    assert p.returncode == 2 and "--explanation" in p.stderr


def _inproc(capsys, *args, ok=True):
    """The CLI's main() in this process (the import is paid once); (exit code, stdout, stderr)."""
    from whybox.cli import main
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    if ok:
        assert code == 0, out.out + out.err
    return code, out.out, out.err


def test_surrogate_and_extract_commands(files, tmp_path, capsys):
    _, out, _ = _inproc(capsys, "surrogate", files / "rf.skops", files / "data.csv", "--drop", "label", "--max-depth", "2",
                        "--budget", "2000", "--out", tmp_path / "s.json")
    assert "agrees with the model on" in out and "What it says:" in out
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["kind"] == "tree" and d["n_queries"] <= 2000 and len(d["rules"]) <= 4
    _inproc(capsys, "surrogate", files / "rf.skops", files / "data.csv", "--drop", "label", "--kind", "rules",
            "--budget", "2000", "--out", tmp_path / "s.html")
    page = (tmp_path / "s.html").read_text()
    assert "<script" not in page and "The first rule that applies decides" in page
    _inproc(capsys, "surrogate", files / "rf.skops", files / "data.csv", "--drop", "label", "--budget", "2000",
            "--out", tmp_path / "s.skops")
    assert (tmp_path / "s.skops").stat().st_size > 0
    bad = run("surrogate", files / "rf.skops", files / "data.csv", "--drop", "label", "--budget", "10", ok=False)
    assert bad.returncode == 2 and "budget=10 is too small" in bad.stderr and "Traceback" not in bad.stderr
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"features": [{"name": c, "low": -3, "high": 3} for c in "abcd"]}))
    df = pd.read_csv(files / "data.csv")
    df.iloc[:50].to_csv(tmp_path / "test.csv", index=False)
    _, out, _ = _inproc(capsys, "extract", files / "rf.skops", "--input-spec", spec, "--method", "random", "--budget", "1024",
                        "--batch-size", "128", "--test-data", tmp_path / "test.csv", "--label", "label",
                        "--out", tmp_path / "c.pt", "--curve", tmp_path / "curve.csv")
    assert "agreement" in out and (tmp_path / "c.pt").stat().st_size > 1000
    assert pd.read_csv(tmp_path / "curve.csv")["queries"].iloc[-1] <= 1024
    code, _, err = _inproc(capsys, "extract", files / "rf.skops", "--input-spec", spec, "--budget", "10", ok=False)
    assert code == 2 and "too small for one cabage round" in err
    spec.write_text(json.dumps({"shape": [4]}))
    code, _, err = _inproc(capsys, "extract", files / "rf.skops", "--input-spec", spec, ok=False)
    assert code == 2 and "input ranges" in err


def test_anchor_and_prototypes_commands(files, tmp_path, capsys):
    _, out, _ = _inproc(capsys, "anchor", files / "rf.skops", files / "data.csv", "--drop", "label", "--row", "3",
                        "--threshold", "0.9", "--budget", "5000", "--out", tmp_path / "a.json")
    assert out.startswith("IF ") or out.startswith("No anchor reached")
    d = json.loads((tmp_path / "a.json").read_text())
    assert d["n_queries"] <= 5000 and d["threshold"] == 0.9
    code, _, err = _inproc(capsys, "anchor", files / "rf.skops", files / "data.csv", "--drop", "label",
                           "--threshold", "1.5", ok=False)
    assert code == 2 and "threshold" in err
    _, out, _ = _inproc(capsys, "anchor", files / "rf.skops", files / "data.csv", "--drop", "label", "--row", "3",
                        "--composite", "--budget", "5000", "--out", tmp_path / "c.html")
    page = (tmp_path / "c.html").read_text()
    assert "LIME:" in out and "<script" not in page and "Decision boundary" in page and "Prototypes" in page
    _, out, _ = _inproc(capsys, "prototypes", files / "rf.skops", files / "data.csv", "--drop", "label",
                        "--n-prototypes", "2", "--out", tmp_path / "p.csv")
    assert "class 0: prototypes" in out and "class 1: prototypes" in out
    assert len(pd.read_csv(tmp_path / "p.csv")) == 4


def test_simulate_command(files, tmp_path, capsys):
    _, out, _ = _inproc(capsys, "simulate", files / "rf.skops", files / "data.csv", "--drop", "label", "--k", "10",
                        "--n-test", "20", "--kinds", "lime,random", "--tests", "forward", "--out", tmp_path / "s.csv")
    assert "forward" in out and "NSG" in out
    assert len(pd.read_csv(tmp_path / "s.csv")) == 2
