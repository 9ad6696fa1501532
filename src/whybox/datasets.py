"""Built-in data and models: the demo (scikit-learn's breast cancer, no files), and loaders for the
OpenXAI data and pretrained models in the shared data folder (``../shared/data`` beside the
repository, or ``$WHYBOX_SHARED_DATA``). Nothing here downloads anything."""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from whybox.errors import InputError

OPENXAI = {"adult": ("Adult", "adult"), "compas": ("COMPAS", "compas"), "german": ("German_Credit_Data", "german")}


@dataclass
class Demo:
    model: Any
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    description: str


def demo(seed: int = 0) -> Demo:
    """A scaled MLP classifier on scikit-learn's breast-cancer data (30 features; trains in ~1 s)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    X = data.data
    y = data.target.to_numpy()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=800,
                                                          random_state=seed))
    model.fit(Xtr, ytr)
    return Demo(model, Xtr.reset_index(drop=True), Xte.reset_index(drop=True), ytr, yte,
                "scikit-learn breast cancer (569 tumours, 30 features); StandardScaler + MLPClassifier(16); "
                "classes 0 = malignant, 1 = benign")


CENSUS_DESCRIPTION = (
    "SYNTHETIC census-like income data generated in code by whybox.datasets.census (not real people): "
    "age, education, occupation, hours per week, capital gain, relationship, race and sex; label: income "
    "above 50K. Planted on purpose: the labels favour men (+{bias:g} on the log-odds, a historical bias, and "
    "marriage is worth more to a husband than to a wife) and 'relationship' is a proxy of sex (only men are "
    "'husband', only women 'wife'). Protected attributes: "
    "sex, race (race carries no planted bias).")

_EDU = ["no high school", "high school", "some college", "bachelor", "master", "doctorate"]
_EDU_P = [0.10, 0.32, 0.25, 0.20, 0.10, 0.03]
_EDU_EFFECT = np.array([-1.2, -0.5, 0.0, 0.7, 1.1, 1.5])
_OCC = ["service", "clerical", "craft", "sales", "professional", "managerial"]
_OCC_EFFECT = np.array([-0.7, -0.3, -0.1, 0.1, 0.6, 0.9])


@dataclass
class CensusData:
    X: pd.DataFrame
    y: np.ndarray                 # "<=50K" / ">50K"
    protected: list[str]
    proxies: list[str]            # planted proxies of the first protected attribute
    description: str


def census(n: int = 4000, *, seed: int = 0, bias: float = 0.7) -> CensusData:
    """A synthetic, census-like income table (generated here, nothing downloaded; documented as
    synthetic): numeric ``age``, ``hours_per_week``, ``capital_gain`` and categorical ``education``,
    ``occupation``, ``relationship``, ``race``, ``sex``. The label ``>50K`` follows a logistic model of
    age, education, occupation, hours, capital gain and marriage (worth more to a husband than to a
    wife), plus ``bias`` on the log-odds for men (a planted historical bias); ``relationship`` is a
    planted proxy of sex ("husband"/"wife")."""
    from whybox.params import Float, Int, check

    n = check("n", n, decl=Int(50, 10**7))
    bias = check("bias", bias, decl=Float(-10, 10))
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n)
    male = sex == "male"
    race = rng.choice(["White", "Black", "Asian", "Other"], n, p=[0.7, 0.14, 0.08, 0.08])
    age = np.clip(rng.normal(40, 12, n), 18, 75).round()
    edu = rng.choice(len(_EDU), n, p=_EDU_P)
    occ_logit = _OCC_EFFECT[None, :] * (edu[:, None] - 2) * 0.8 + rng.gumbel(size=(n, len(_OCC)))
    occ = occ_logit.argmax(axis=1)
    hours = np.clip(rng.normal(np.where(male, 42, 37), 9, n), 5, 80).round()
    married = rng.random(n) < np.clip(0.15 + 0.012 * (age - 18), 0, 0.65)
    child = ~married & (age < 26) & (rng.random(n) < 0.5)
    alone = ~married & ~child & (rng.random(n) < 0.55)
    relationship = np.where(married, np.where(male, "husband", "wife"),
                            np.where(child, "own child", np.where(alone, "not in family", "unmarried")))
    gain = np.where(rng.random(n) < 0.08, rng.lognormal(8.5, 1.0, n), 0.0).round(-1)
    logit = (-1.6 + 0.06 * (age - 40) - 0.0015 * (age - 40) ** 2 + _EDU_EFFECT[edu] + _OCC_EFFECT[occ]
             + 0.04 * (hours - 40) + np.where(married, np.where(male, 1.2, 0.5), 0.0) + 1.2 * (gain > 5000)
             + bias * male)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), ">50K", "<=50K")
    X = pd.DataFrame({"age": age, "education": np.array(_EDU)[edu], "occupation": np.array(_OCC)[occ],
                      "hours_per_week": hours, "capital_gain": gain, "relationship": relationship,
                      "race": race, "sex": sex})
    return CensusData(X, y, ["sex", "race"], ["relationship"], CENSUS_DESCRIPTION.format(bias=bias))


def census_model(C: float = 1.0, class_weight: Any = None):
    """The demo's model for :func:`census` tables, unfitted: one-hot categories + scaled numbers +
    LogisticRegression (a scikit-learn Pipeline, so remedies can clone and refit it)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = ["education", "occupation", "relationship", "race", "sex"]
    nums = ["age", "hours_per_week", "capital_gain"]
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cats), ("num", StandardScaler(), nums)])
    return Pipeline([("prep", prep), ("clf", LogisticRegression(C=C, class_weight=class_weight, max_iter=2000))])


def census_demo(seed: int = 0, n: int = 4000) -> Demo:
    """The dashboard's default demo: :func:`census` split 75/25, :func:`census_model` fitted on the
    training part (trains in well under a second)."""
    from sklearn.model_selection import train_test_split

    d = census(n, seed=seed)
    Xtr, Xte, ytr, yte = train_test_split(d.X, d.y, test_size=0.25, random_state=seed, stratify=d.y)
    model = census_model().fit(Xtr, ytr)
    return Demo(model, Xtr.reset_index(drop=True), Xte.reset_index(drop=True), ytr, yte,
                d.description + " Model: one-hot + LogisticRegression fitted on 75% of the rows.")


def shared_data_dir() -> Path | None:
    """The shared data folder, or None when absent."""
    env = os.environ.get("WHYBOX_SHARED_DATA")
    cands = [Path(env)] if env else []
    here = Path(__file__).resolve()
    cands += [p / "shared" / "data" for p in here.parents[:5]]
    cands += [Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data"]
    for c in cands:
        if (c / "openxai").is_dir() or (c / "README.md").is_file():
            return c
    return None


def _openxai_dir(name: str) -> tuple[Path, str]:
    if name not in OPENXAI:
        raise InputError(f"unknown OpenXAI dataset {name!r}; choose one of {sorted(OPENXAI)}")
    root = shared_data_dir()
    if root is None:
        raise FileNotFoundError("shared data folder not found (../shared/data or $WHYBOX_SHARED_DATA)")
    folder, stem = OPENXAI[name]
    return root / "openxai" / "data" / folder, stem


@dataclass
class TabularData:
    X: pd.DataFrame           # features, min-max scaled per split (OpenXAI convention)
    y: np.ndarray
    groups: dict[str, list[str]] | None
    kinds: dict[str, str]
    raw: pd.DataFrame         # unscaled features


def _openxai_files(name: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """(csv, metadata json) of a shared OpenXAI data set, or of any OpenXAI-format folder
    (``<stem>-train.csv``, ``<stem>-test.csv``, optionally ``<stem>-feature-metadata.json``) or CSV file."""
    if str(name) in OPENXAI:
        folder, stem = _openxai_dir(str(name))
        return folder / f"{stem}-{split}.csv", folder / f"{stem}-feature-metadata.json"
    p = Path(name)
    if p.is_file() and p.suffix == ".csv":
        stem = p.name[: -len(f"-{split}.csv")] if p.name.endswith(f"-{split}.csv") else p.stem
        return p, p.with_name(f"{stem}-feature-metadata.json")
    if p.is_dir():
        found = sorted(p.glob(f"*-{split}.csv"))
        if len(found) != 1:
            raise InputError(f"{p} should hold exactly one '*-{split}.csv' file (OpenXAI format), found {len(found)}")
        stem = found[0].name[: -len(f"-{split}.csv")]
        return found[0], p / f"{stem}-feature-metadata.json"
    raise InputError(f"unknown OpenXAI dataset {name!r}: use one of {sorted(OPENXAI)}, an OpenXAI-format folder or a "
                     "CSV file")


def load_openxai(name: str | os.PathLike, split: str = "test") -> TabularData:
    """An OpenXAI dataset split, scaled as OpenXAI scaled it for its models: MinMaxScaler fitted on
    this split file; binary/one-hot columns stay 0/1; one-hot blocks (from the feature metadata's
    ``feature_n_cols``) come as ``groups``. ``name``: a shared data set (adult, compas, german), or
    the path of any OpenXAI-format folder or CSV (features, then the label as the last column)."""
    if split not in ("train", "test"):
        raise InputError(f"split must be 'train' or 'test', got {split!r}")
    csv, meta = _openxai_files(name, split)
    try:
        df = pd.read_csv(csv)
    except (OSError, ValueError) as exc:
        raise InputError(f"could not read {csv}: {exc}") from None
    if df.shape[1] < 2:
        raise InputError(f"{csv} needs feature columns and a label column (the last one)")
    label = df.columns[-1]
    try:
        raw = df.drop(columns=[label]).astype(float)
    except ValueError:
        raise InputError(f"{csv}: OpenXAI-format features are numeric (one-hot encoded); found text columns") from None
    y = df[label].to_numpy().astype(int)
    lo, hi = raw.min(), raw.max()
    X = (raw - lo) / (hi - lo).replace(0, 1)
    groups = None
    kinds = {c: ("binary" if set(np.unique(raw[c])) <= {0.0, 1.0} else "continuous") for c in raw.columns}
    if meta.exists():
        m = json.loads(meta.read_text())
        groups, pos = {}, 0
        for fname, width in zip(m["feature_names"], m["feature_n_cols"]):
            cols = list(raw.columns[pos:pos + width])
            if width > 1:
                groups[fname] = cols
            pos += width
    return TabularData(X=X, y=y, groups=groups, kinds=kinds, raw=raw)


def openxai_model(name: str | os.PathLike, kind: str = "lr"):
    """The pretrained OpenXAI torch model (softmax over the classes) for shared dataset ``name``, or
    the model in an OpenXAI-style state-dict file when ``name`` is a path (see :func:`load_openxai_model`).

    kind "lr": softmax(linear(x)); kind "ann": softmax(W2 relu(W1 x)), 100 hidden units."""
    if str(name).endswith((".pt", ".pth")) or Path(name).is_file():
        return load_openxai_model(name)
    if kind not in ("lr", "ann"):
        raise InputError(f"kind must be 'lr' or 'ann', got {kind!r}")
    root = shared_data_dir()
    if root is None:
        raise FileNotFoundError("shared data folder not found (../shared/data or $WHYBOX_SHARED_DATA)")
    files = glob.glob(str(root / "openxai" / "models" / kind.upper() / f"{name}_lr_*.pt"))
    if not files:
        raise FileNotFoundError(f"no OpenXAI {kind} model for {name!r}")
    return load_openxai_model(files[0])


def load_openxai_model(path_or_state: Any):
    """A torch module from an OpenXAI-style state dict (a ``.pt`` file or the dict itself), the
    architecture read from its keys: ``linear.*`` (LR: softmax(linear(x))), ``input1.*``/``input2.*``
    (one hidden ReLU layer), or ``layers.0/2/4/...`` (an MLP with ReLU between Linear layers);
    softmax over the outputs."""
    try:
        import torch
        from torch import nn
    except ImportError:
        raise InputError("OpenXAI models are torch modules: pip install 'whybox[torch]'") from None
    if isinstance(path_or_state, dict):
        sd = path_or_state
    else:
        try:
            sd = torch.load(path_or_state, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - unreadable or not a state dict
            raise InputError(f"could not read a torch state dict from {path_or_state}: {type(exc).__name__}") from None
    if not isinstance(sd, dict):
        raise InputError(f"{path_or_state} does not hold a state dict")
    keys = sorted(sd)

    layer_ids = sorted({int(k.split(".")[1]) for k in keys if k.startswith("layers.") and k.endswith(".weight")})
    if "linear.weight" in sd:
        class LR(nn.Module):
            def __init__(self, d: int):
                super().__init__()
                self.linear = nn.Linear(d, 2)

            def forward(self, x):
                return torch.softmax(self.linear(x), dim=-1)

        net = LR(sd["linear.weight"].shape[1])
        net.linear = nn.Linear(sd["linear.weight"].shape[1], sd["linear.weight"].shape[0])
    elif "input1.weight" in sd and "input2.weight" in sd:
        class ANN(nn.Module):
            def __init__(self, d: int, h: int):
                super().__init__()
                self.input1 = nn.Linear(d, h)
                self.input2 = nn.Linear(h, 2)

            def representation(self, x):
                return torch.relu(self.input1(x))

            def forward(self, x):
                return torch.softmax(self.input2(self.representation(x)), dim=-1)

        net = ANN(sd["input1.weight"].shape[1], sd["input1.weight"].shape[0])
        net.input2 = nn.Linear(sd["input2.weight"].shape[1], sd["input2.weight"].shape[0])
    elif layer_ids and layer_ids == list(range(0, 2 * len(layer_ids), 2)):
        class MLP(nn.Module):
            def __init__(self, shapes):
                super().__init__()
                mods: list[Any] = []
                for i, (o, n_in) in enumerate(shapes):
                    mods.append(nn.Linear(n_in, o))
                    if i < len(shapes) - 1:
                        mods.append(nn.ReLU())
                self.layers = nn.Sequential(*mods)

            def forward(self, x):
                return torch.softmax(self.layers(x), dim=-1)

        net = MLP([tuple(sd[f"layers.{i}.weight"].shape) for i in layer_ids])
    else:
        raise InputError(f"not an OpenXAI-style state dict (expected linear.*, input1/input2.* or layers.0/2/4...): "
                         f"keys {keys[:8]}")
    try:
        net.load_state_dict(sd)
    except RuntimeError as exc:
        raise InputError(f"the state dict does not fit the architecture read from its keys: {str(exc)[:200]}") from None
    return net.eval()


def load_rt_polarity(split: str = "train", n: int | None = None) -> tuple[list[str], np.ndarray]:
    """Movie-review sentences of rt-polarity from the shared data folder: (texts, labels) with
    labels 1 = "pos", 0 = "neg"; the first ``n`` of the split (its stored order) when given."""
    if split not in ("train", "dev", "test"):
        raise InputError(f"split must be 'train', 'dev' or 'test', got {split!r}")
    root = shared_data_dir()
    path = None if root is None else root / "text" / "rt-polarity" / f"{split}.jsonl"
    if path is None or not path.is_file():
        raise FileNotFoundError("rt-polarity not found (../shared/data/text/rt-polarity or $WHYBOX_SHARED_DATA)")
    texts, labels = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if n is not None and len(texts) >= n:
                break
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(1 if row["label"] == "pos" else 0)
    return texts, np.array(labels)


def tfidf_classifier(texts: list[str], labels: Any, *, additive: bool = False, C: float = 1.0):
    """TF-IDF + LogisticRegression on raw strings, with the word pattern whybox uses for word units.

    ``additive=True`` drops the row normalisation (``norm=None``): the decision function is then
    ``b + sum over word occurrences of coef[w] * idf[w]``, so each word occurrence's exact
    contribution is known (a correctness check for text explainers)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from whybox.representations.text import WORD_RE

    vec = TfidfVectorizer(norm=None if additive else "l2", token_pattern=WORD_RE.pattern, lowercase=True)
    return make_pipeline(vec, LogisticRegression(C=C, max_iter=5000)).fit(texts, labels)


STDLIB_SKIP = ("site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__")


def stdlib_corpus(split: str = "all", *, test_share: float = 0.1, max_files: int | None = None,
                  max_chars: int | None = None) -> list[tuple[str, str]]:
    """Python source files of the standard library of the running Python (present on every install,
    nothing downloaded), as ``(relative path, code)`` pairs sorted by path. Test suites and
    site-packages are left out.

    ``split`` "train", "test" or "all": a file is in "test" when the SHA-1 of its relative path,
    read as a number, falls in the first ``test_share`` of the range, so the split never depends on
    which other files exist. ``max_files`` keeps the first files (by path) of the split;
    ``max_chars`` cuts each longer file after the last statement that ends within that many
    characters and leaves code that still parses (a cut inside a docstring would turn prose into
    "code"); a file with no such cut (its first statement is longer) is left out.
    """
    import hashlib
    import sysconfig

    if split not in ("train", "test", "all"):
        raise InputError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if not (isinstance(test_share, float) and 0 < test_share < 1):
        raise InputError(f"test_share must be a float in (0, 1), got {test_share!r}")
    for name, v in (("max_files", max_files), ("max_chars", max_chars)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InputError(f"{name} must be a positive integer or None, got {v!r}")
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root)
        if any(part in STDLIB_SKIP for part in rel.parts):
            continue
        h = int(hashlib.sha1(rel.as_posix().encode()).hexdigest()[:8], 16) / 16 ** 8
        if split != "all" and (h < test_share) != (split == "test"):
            continue
        try:
            code = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if max_chars is not None and len(code) > max_chars:
            code = _cut_code(code, max_chars)
        if code and code.strip():
            out.append((rel.as_posix(), code))
        if max_files is not None and len(out) >= max_files:
            break
    return out


def _cut_code(code: str, max_chars: int) -> str | None:
    import ast

    from whybox.code.syntax import ast_offsets

    at, _ = ast_offsets(code)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        tree = None
    if tree is not None:
        ends = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.stmt) and n.end_lineno is not None:
                e = at(n.end_lineno, n.end_col_offset)
                if e < max_chars:          # + the newline added below
                    ends.add(e)
        for e in sorted(ends, reverse=True)[:25]:
            prefix = code[:e] + "\n"
            try:
                ast.parse(prefix)
                return prefix
            except SyntaxError:
                continue
    return None
