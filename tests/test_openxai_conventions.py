"""OpenXAI's conventions when asked for: the PGI AUC summary, absolute Gaussian noise, ground truth from
weights, and loaders for any OpenXAI-format data folder and state dict."""
import json
import math

import numpy as np
import pandas as pd
import pytest

import whybox
from whybox import InputError
from whybox import metrics as M
from whybox.metrics.neighbourhood import Gaussian, parse_neighbourhood

LIN = lambda w: (lambda X: np.asarray(X, float) @ np.asarray(w, float))  # noqa: E731


def test_pgi_auc_openxai_summary_is_the_trapezoid_over_k():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 8))
    f = LIN([3, -2, 1, 0.5, 0.2, 0.1, 0, 0])
    e = whybox.explain(f, X, method="occlusion")
    K = math.ceil(0.25 * 8)
    curve = np.stack([M.pgi(f, X, e, k=k, seed=4) for k in range(1, K + 1)])
    from sklearn.metrics import auc
    expected = np.array([auc(np.arange(K) / (K - 1), curve[:, i]) for i in range(len(X))])
    np.testing.assert_allclose(M.pgi_auc(f, X, e, summary="openxai", seed=4), expected, rtol=1e-12)
    # the default: the mean over k = 1..d
    full = np.stack([M.pgi(f, X, e, k=k, seed=4) for k in range(1, 9)])
    np.testing.assert_allclose(M.pgi_auc(f, X, e, seed=4), full.mean(axis=0), rtol=1e-12)
    with pytest.raises(InputError, match="summary must be one of"):
        M.pgi_auc(f, X, e, summary="median")


def test_gaussian_scale_absolute_or_relative():
    assert parse_neighbourhood("gaussian(0.1, absolute)") == Gaussian(0.1, "absolute")
    assert str(Gaussian(0.1, "absolute")) == "gaussian(0.1, absolute)" and str(Gaussian(0.1)) == "gaussian(0.1)"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 3)) * [1.0, 10.0, 100.0]
    bg = whybox.kmeans(rng.normal(size=(200, 3)) * [1.0, 10.0, 100.0], 5)
    f = lambda A: np.asarray(A, float) ** 2 @ np.ones(3)  # noqa: E731  (nonlinear: noise size matters)
    e = whybox.explain(f, X, method="gradient", background=bg)
    rel = M.local_fidelity(f, X, e, neighbourhood="gaussian(0.1)", background=bg, n_samples=300)
    ab = M.local_fidelity(f, X, e, neighbourhood="gaussian(0.1, absolute)", background=bg, n_samples=300)
    assert (ab < rel).all()            # absolute 0.1 is tiny next to columns of spread 10 and 100
    with pytest.raises(InputError, match="scale must be one of"):
        Gaussian(0.1, "percent")
    c = whybox.choose(f, X, candidates=["gradient", "occlusion"], neighbourhood="gaussian(0.1, absolute)",
                      background=bg, n_samples=50)
    assert c.explanation.params["chosen_by"]["gaussian_scale"] == "absolute"


def test_ground_truth_from_weights_or_a_state_dict():
    torch = pytest.importorskip("torch")
    W = np.array([[1.0, -2.0, 0.5], [-1.0, 2.0, 1.5]])
    np.testing.assert_allclose(M.ground_truth(W, [1, 0]), [W[1] - W[0], W[0] - W[1]])
    sd = {"linear.weight": torch.tensor(W), "linear.bias": torch.zeros(2)}
    np.testing.assert_allclose(M.ground_truth(sd, [1]), [W[1] - W[0]])
    with pytest.raises(InputError, match="one 2-D weight"):
        M.ground_truth({"a.weight": torch.zeros(2, 3), "b.weight": torch.zeros(3, 3)}, [0])


def test_load_any_openxai_format_folder_and_state_dicts(tmp_path):
    torch = pytest.importorskip("torch")
    from whybox.datasets import load_openxai, load_openxai_model, openxai_model

    rng = np.random.default_rng(0)
    n = 50
    df = pd.DataFrame({"age": rng.uniform(20, 70, n), "hours": rng.uniform(1, 60, n),
                       "c_a": 0.0, "c_b": 0.0, "c_c": 0.0, "label": rng.integers(0, 2, n)})
    df.loc[:, ["c_a", "c_b", "c_c"]] = np.eye(3)[rng.integers(0, 3, n)]
    df.iloc[:40].to_csv(tmp_path / "toy-train.csv", index=False)
    df.iloc[40:].to_csv(tmp_path / "toy-test.csv", index=False)
    (tmp_path / "toy-feature-metadata.json").write_text(json.dumps({"feature_names": ["age", "hours", "colour"],
                                                                    "feature_n_cols": [1, 1, 3]}))
    d = load_openxai(tmp_path, "train")
    assert d.X.shape == (40, 5) and d.X["age"].min() == 0.0 and d.X["age"].max() == 1.0     # min-max per split
    assert d.groups == {"colour": ["c_a", "c_b", "c_c"]} and d.kinds["c_a"] == "binary"
    assert load_openxai(tmp_path / "toy-test.csv", "test").X.shape == (10, 5)
    with pytest.raises(InputError, match="exactly one"):
        load_openxai(tmp_path.parent, "train")

    x = torch.tensor(d.X.to_numpy()[:3], dtype=torch.float32)
    lr_sd = {"linear.weight": torch.randn(2, 5), "linear.bias": torch.randn(2)}
    ann_sd = {"input1.weight": torch.randn(7, 5), "input1.bias": torch.randn(7), "input2.weight": torch.randn(2, 7),
              "input2.bias": torch.randn(2)}
    mlp_sd = {"layers.0.weight": torch.randn(8, 5), "layers.0.bias": torch.randn(8),
              "layers.2.weight": torch.randn(6, 8), "layers.2.bias": torch.randn(6),
              "layers.4.weight": torch.randn(3, 6), "layers.4.bias": torch.randn(3)}
    for sd, expect in ((lr_sd, lambda x: torch.softmax(x @ lr_sd["linear.weight"].T + lr_sd["linear.bias"], -1)),
                       (ann_sd, None), (mlp_sd, None)):
        torch.save(sd, tmp_path / "m.pt")
        net = openxai_model(tmp_path / "m.pt")
        out = net(x)
        assert torch.allclose(out.sum(-1), torch.ones(3))
        if expect is not None:
            assert torch.allclose(out, expect(x), atol=1e-6)
        assert load_openxai_model(sd)(x).shape == out.shape
    e = whybox.explain(net, d.X.iloc[:2], method="gradient")          # 3 outputs: all of them by default
    assert e.values.shape == (2, 5, 3)
    with pytest.raises(InputError, match="not an OpenXAI-style state dict"):
        load_openxai_model({"conv.weight": torch.zeros(2, 2)})


def test_agreement_summarised_over_k_like_pgi():
    a = np.array([[4.0, 3.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.0]])
    b = np.array([[4.0, 2.0, 3.0, 1.0, 0.5, 0.2, 0.0, 0.1]])
    fa = np.array([M.feature_agreement(a, b, k)[0] for k in range(1, 9)])
    np.testing.assert_allclose(M.agreement_auc(a, b, "FA"), [fa.mean()])
    from sklearn.metrics import auc
    np.testing.assert_allclose(M.agreement_auc(a, b, "FA", summary="openxai"), [auc([0, 1], fa[:2])])
    ra = np.array([M.rank_agreement(a, b, k)[0] for k in range(1, 4)])
    np.testing.assert_allclose(M.agreement_auc(a, b, "RA", K=3), [ra.mean()])
    with pytest.raises(InputError, match="metric must be one of"):
        M.agreement_auc(a, b, "PRA")
