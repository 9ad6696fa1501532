"""The pretrained OpenXAI LR and ANN models (PyTorch state dicts in ../shared/data) are explained."""
import numpy as np
import pytest

import whybox
from whybox.datasets import load_openxai, openxai_model


@pytest.mark.parametrize("name", ["adult", "compas", "german"])
def test_lr_gradient_top_features_match_weights(shared, name):
    data = load_openxai(name, "test")
    net = openxai_model(name, "lr")
    X = data.X.iloc[:20]
    e = whybox.explain(net, X, method="gradient", target=1)
    w = (net.linear.weight[1] - net.linear.weight[0]).detach().numpy().astype(float)
    # d p1 / dx = p1 p0 (w1 - w0): the same ranking and direction as the weights for every row
    cos = e.values @ w / (np.linalg.norm(e.values, axis=1) * np.linalg.norm(w))
    np.testing.assert_allclose(cos, 1.0, atol=1e-5)
    k = int(np.ceil(0.25 * len(w)))
    top_w = set(np.argsort(-np.abs(w))[:k])
    for r in range(len(X)):
        assert set(np.argsort(-np.abs(e.values[r]))[:k]) == top_w


def test_lr_query_based_gradient_matches_autograd(shared):
    data = load_openxai("adult", "test")
    net = openxai_model("adult", "lr")
    import torch

    def black_box(X):
        with torch.no_grad():
            return net(torch.as_tensor(X, dtype=torch.float32)).numpy()

    X = data.X.iloc[:10]
    auto = whybox.explain(net, X, method="gradient", target=1)
    query = whybox.explain(black_box, X, method="gradient", target=1, fd_step=1e-2)
    np.testing.assert_allclose(query.values, auto.values, rtol=1e-2, atol=1e-3 * np.abs(auto.values).max())


@pytest.mark.parametrize("method", ["kernelshap", "lime", "integrated_gradients", "smoothgrad", "occlusion"])
def test_ann_explained_on_test_data(shared, method):
    data = load_openxai("german", "test")
    net = openxai_model("german", "ann")
    bg = whybox.kmeans(load_openxai("german", "train").X, 10, seed=0)
    X = data.X.iloc[:5]
    e = whybox.explain(net, X, method=method, background=bg, groups=data.groups, seed=0)
    assert e.values.shape == (5, 20)   # 8 numeric + 12 one-hot groups
    assert e.feature_names[8] == "status"
    assert np.isfinite(e.values).all()
    if method == "kernelshap":
        np.testing.assert_allclose(e.values.sum(1) + e.base_values, e.predictions, atol=1e-6)


def test_ann_accuracy_is_what_openxai_reports(shared):
    import torch
    data = load_openxai("adult", "test")
    net = openxai_model("adult", "ann")
    with torch.no_grad():
        pred = net(torch.tensor(data.X.to_numpy(), dtype=torch.float32)).argmax(1).numpy()
    assert (pred == data.y).mean() > 0.8
