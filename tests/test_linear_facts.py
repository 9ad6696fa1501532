"""Han et al. (2022): on a linear model f(x) = w.x + c, the perturbation methods, IG and Gradient x
Input return w*(x-b) and SmoothGrad, vanilla gradients and C-LIME return w -- both for a torch model
(autograd) and for the same model hidden behind a numpy callable (gradients from queries)."""
import numpy as np
import pytest
import torch

import whybox

D = 6
W = np.array([1.5, -2.0, 0.7, 0.0, 3.0, -0.4])
C = 0.25


def numpy_linear(X):
    return X @ W + C


class TorchLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(D, 1).double()
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor(W)[None])
            self.lin.bias.fill_(C)

    def forward(self, x):
        return self.lin(x)


def torch_behind_callable():
    net = TorchLinear()
    def f(X):
        with torch.no_grad():
            return net(torch.as_tensor(X, dtype=torch.float64)).numpy()
    return f


BACKENDS = {"numpy": numpy_linear, "torch_autograd": TorchLinear(), "torch_callable": torch_behind_callable()}

# method -> (expects w*(x-b) [True] or w [False], extra params, tolerance)
CASES = {
    "lime": (True, {"alpha": 0.0, "n_samples": 2000}, 1e-8),
    "kernelshap": (True, {"n_samples": 40}, 1e-8),      # sampled (40 < 2^6 - 2): exact on additive games
    "shapley": (True, {}, 1e-8),
    "occlusion": (True, {}, 1e-8),
    "integrated_gradients": (True, {"steps": 20}, 1e-6),
    "gradxinput": (True, {}, 1e-6),
    "smoothgrad": (False, {"n_samples": 60}, 1e-6),
    "gradient": (False, {}, 1e-6),
    "clime": (False, {"n_samples": 300}, 1e-8),
}


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("method", list(CASES))
def test_linear_model_facts(backend, method):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, D))
    b = rng.normal(size=(1, D))
    contrib, params, tol = CASES[method]
    background = None if method == "gradxinput" else b  # Gradient x Input is defined with b = 0
    e = whybox.explain(BACKENDS[backend], X, method=method, background=background, seed=3, **params)
    base = 0.0 if background is None else b
    expected = W * (X - base) if contrib else np.broadcast_to(W, X.shape)
    np.testing.assert_allclose(e.values, expected, atol=tol, rtol=0)
    assert e.values.shape == (4, D)
    np.testing.assert_allclose(e.predictions, numpy_linear(X), atol=1e-10)


@pytest.mark.parametrize("method", ["gradient", "smoothgrad", "integrated_gradients"])
def test_gradient_family_estimator_is_recorded(method):
    X = np.ones((1, D))
    auto = whybox.explain(BACKENDS["torch_autograd"], X, method=method, seed=0)
    query = whybox.explain(BACKENDS["numpy"], X, method=method, seed=0)
    if method != "integrated_gradients":
        assert auto.params["estimator"] == "autograd"
        assert query.params["estimator"] != "autograd"
    # query-based gradients cost 2p model rows per gradient point; autograd one
    assert query.n_model_rows > auto.n_model_rows


def test_kernelshap_efficiency_with_data_background():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, D))
    bg = rng.normal(size=(25, D))
    e = whybox.explain(numpy_linear, X, method="kernelshap", background=bg, n_samples=50)
    np.testing.assert_allclose(e.values, W * (X - bg.mean(axis=0)), atol=1e-8)
    np.testing.assert_allclose(e.base_values, numpy_linear(bg).mean(), atol=1e-10)
    np.testing.assert_allclose(e.values.sum(1) + e.base_values, e.predictions, atol=1e-10)


def test_logistic_direction_holds_scale_does_not():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(2)
    Xtr = rng.normal(size=(400, D))
    y = (Xtr @ W + 0.3 * rng.normal(size=400) > 0).astype(int)
    lr = LogisticRegression(C=10.0).fit(Xtr, y)
    X = rng.normal(size=(5, D))
    e = whybox.explain(lr, X, method="gradient", target=1)
    cos = (e.values @ lr.coef_[0]) / (np.linalg.norm(e.values, axis=1) * np.linalg.norm(lr.coef_[0]))
    np.testing.assert_allclose(cos, 1.0, atol=1e-6)  # same direction as the weights
    assert not np.allclose(e.values, lr.coef_[0], atol=1e-3)  # but not their scale
