"""Tree ensembles read into one form: for each output, a list of trees whose leaf values, scaled and
summed (plus a constant), give the model's output for that output exactly.

Supported: scikit-learn DecisionTree/ExtraTree classifiers (``predict_proba``) and regressors,
RandomForest/ExtraTrees classifiers (``predict_proba``: the mean of the trees' leaf class fractions)
and regressors, GradientBoosting regressors and classifiers on their margin
(``decision_function``; the probability is a nonlinear transform of a sum of trees and does not
decompose tree by tree); XGBoost and LightGBM models and raw Boosters on their margin
(``output="raw"``, or ``predict`` where that is the margin). Comparisons are made as each library
makes them: scikit-learn and XGBoost in float32 (XGBoost's strict ``x < c`` becomes
``x <= the float32 below c``), LightGBM in float64.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from whybox.errors import MethodError


class NotASumOfTrees(MethodError):
    """The explained output is a nonlinear transform of a sum of trees (a boosted classifier's
    probability): it does not decompose tree by tree."""


@dataclass
class Tree:
    feature: np.ndarray        # (nodes,) split feature, -1 at leaves
    threshold: np.ndarray      # (nodes,) go left when float32(x) <= threshold
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray          # (nodes,) the output's leaf value (scaled by the ensemble's factor)
    cover: np.ndarray          # (nodes,) training weight reaching the node (path-dependent TreeSHAP)
    dtype: type = np.float32   # the precision the library compares in
    missing_left: np.ndarray | None = None    # (nodes,) where a NaN goes; default: right (NaN <= t is false)

    def __post_init__(self) -> None:
        if self.missing_left is None:
            self.missing_left = np.zeros(len(self.feature), bool)
        self.missing_left = np.asarray(self.missing_left, bool)

    def goes_left(self, x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        t = self.threshold[nodes]
        return (x <= t) | (np.isnan(x) & self.missing_left[nodes])

    def predict_one(self, x: np.ndarray) -> float:
        """The leaf value one row reaches (a scalar walk: cheaper than :meth:`predict` for one row)."""
        x = np.asarray(x, self.dtype)
        node = 0
        while self.left[node] >= 0:
            v = x[self.feature[node]]
            go = (v <= self.threshold[node]) if v == v else self.missing_left[node]
            node = self.left[node] if go else self.right[node]
        return float(self.value[node])

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, self.dtype)
        node = np.zeros(len(X), np.int64)
        active = self.left[node] >= 0
        while active.any():
            i = np.where(active)[0]
            nd = node[i]
            go_left = self.goes_left(X[i, self.feature[nd]], nd)
            node[i] = np.where(go_left, self.left[nd], self.right[nd])
            active[i] = self.left[node[i]] >= 0
        return self.value[node]


@dataclass
class Ensemble:
    trees: list[list[Tree]]     # per output
    constant: np.ndarray        # per output
    n_features: int
    output: str                 # the method whose outputs these are
    dtype: type = np.float32
    cache: dict = field(default_factory=dict, repr=False)    # derived tables: leaves by path length (trees.shap), flat nodes (trees.kernel)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([c + sum((t.predict(X) for t in ts), np.zeros(len(X)))
                                for ts, c in zip(self.trees, self.constant)])


def tree_source(m: Any) -> tuple[Any, str]:
    """(the estimator a whybox Model wraps, the output it explains), or a MethodError saying what is needed."""
    est = getattr(m, "source", None) or getattr(getattr(m, "fn", None), "__self__", None)
    method = getattr(m, "method", None)
    if est is None or method is None:
        raise MethodError("method 'tree' needs a fitted tree model (scikit-learn, XGBoost, LightGBM), not a wrapped "
                          "function")
    return est, method


def read_trees(model: Any, *, fresh: bool = False) -> "Ensemble":
    """The trees of a Model adapter's fitted tree model, read once and kept on the adapter
    (``model.reads``) for every later call; ``fresh=True`` reads them again (the model was refitted
    in place). Raises MethodError (NotASumOfTrees included) or ImportError as tree_ensemble does."""
    est, method = tree_source(model)
    reads = getattr(model, "reads", None)
    if reads is None:
        return tree_ensemble(est, method)
    key = ("trees", id(est), method)
    if fresh or key not in reads:
        reads[key] = tree_ensemble(est, method)
    return reads[key]


def reads_trees(problem: Any) -> bool:
    """Whether ``method="tree"`` reads a prepared problem's model exactly from its trees (a supported
    tree ensemble whose explained output is a sum of trees, on single numeric columns). The trees
    read here are kept on the adapter, so the tree recipe that follows does not read them again."""
    if any(len(g) > 1 for g in problem.spec.groups):
        return False
    try:
        read_trees(problem.model)
    except (MethodError, ImportError):
        return False
    return True


def _tree(t: Any, out: int, scale: float, classifier: bool) -> Tree:
    v = np.asarray(t.value, float)[:, 0, :]
    if classifier:
        v = v / np.where(v.sum(axis=1, keepdims=True) > 0, v.sum(axis=1, keepdims=True), 1.0)
    miss = getattr(t, "missing_go_to_left", None)            # scikit-learn >= 1.3
    return Tree(np.where(t.children_left < 0, -1, t.feature).astype(np.int64), t.threshold.astype(np.float64),
                t.children_left.astype(np.int64), t.children_right.astype(np.int64), scale * v[:, out],
                t.weighted_n_node_samples.astype(float),
                missing_left=None if miss is None else np.asarray(miss, bool))


def tree_ensemble(est: Any, output: str) -> Ensemble:
    """The trees of a fitted scikit-learn tree model for its scoring method ``output``."""
    from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, GradientBoostingClassifier,
                                  GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
    from sklearn.tree import BaseDecisionTree, DecisionTreeClassifier

    name = type(est).__name__
    p = int(getattr(est, "n_features_in_", 0))
    if isinstance(est, BaseDecisionTree):
        clf = isinstance(est, DecisionTreeClassifier)
        if clf and output != "predict_proba":
            raise MethodError(f"method 'tree' explains {name}.predict_proba (got {output})")
        k = est.tree_.value.shape[2] if clf else est.tree_.value.shape[1]
        if not clf and k != 1:
            raise MethodError(f"method 'tree' takes single-output regressors; {name} has {k} outputs")
        return Ensemble([[_tree(est.tree_, j, 1.0, clf)] for j in range(k)], np.zeros(k), p, output)
    if isinstance(est, (RandomForestClassifier, ExtraTreesClassifier, RandomForestRegressor, ExtraTreesRegressor)):
        clf = isinstance(est, (RandomForestClassifier, ExtraTreesClassifier))
        if clf and output != "predict_proba":
            raise MethodError(f"method 'tree' explains {name}.predict_proba (got {output})")
        if getattr(est, "n_outputs_", 1) != 1:
            raise MethodError(f"method 'tree' takes single-output forests; {name} has {est.n_outputs_} outputs")
        k = len(est.classes_) if clf else 1
        s = 1.0 / len(est.estimators_)
        return Ensemble([[_tree(t.tree_, j, s, clf) for t in est.estimators_] for j in range(k)], np.zeros(k), p,
                        output)
    if isinstance(est, (GradientBoostingRegressor, GradientBoostingClassifier)):
        if isinstance(est, GradientBoostingClassifier) and output != "decision_function":
            raise NotASumOfTrees(
                f"{name}'s {output} is a nonlinear transform of a sum of trees and does not decompose tree by "
                "tree: explain its margin (output='decision_function') with method 'tree', or the probability "
                "with a sampling method (kernelshap)")
        k = est.estimators_.shape[1]
        init = np.asarray(est._raw_predict_init(np.zeros((1, p), np.float32)), float).reshape(-1)
        lr = float(est.learning_rate)
        return Ensemble([[_tree(t.tree_, 0, lr, False) for t in est.estimators_[:, j]] for j in range(k)], init, p,
                        output)
    if type(est).__name__ in ("HistGradientBoostingRegressor", "HistGradientBoostingClassifier"):
        return _hist_gradient_boosting(est, output)
    lib = type(est).__module__.split(".")[0]
    if lib == "xgboost":
        return _xgboost(est, output)
    if lib == "lightgbm":
        return _lightgbm(est, output)
    raise MethodError(f"method 'tree' reads scikit-learn decision trees, random forests, extra trees and gradient "
                      f"boosting, XGBoost and LightGBM; {name} is not one of them (use kernelshap, or shapley for "
                      "d <= 16)")


def _hist_gradient_boosting(est: Any, output: str) -> Ensemble:
    """scikit-learn's HistGradientBoosting*: the fitted predictors' nodes (thresholds on the raw
    values, compared in float64; NaN down ``missing_go_to_left``), raw output = baseline + trees."""
    name = type(est).__name__
    clf = name.endswith("Classifier")
    identity = type(getattr(getattr(est, "_loss", None), "link", None)).__name__ == "IdentityLink"
    if (clf and output != "decision_function") or (not clf and (output != "predict" or not identity)):
        raise NotASumOfTrees(
            f"{name}'s {output} is a nonlinear transform of a sum of trees and does not decompose tree by tree: "
            + ("explain its margin (output='decision_function') with method 'tree', or " if clf else "explain ")
            + "the prediction with a sampling method (kernelshap), or exactly by enumeration with a background")
    p = int(est.n_features_in_)
    base = np.asarray(est._baseline_prediction, float).reshape(-1)
    k = len(base)
    trees: list[list[Tree]] = [[] for _ in range(k)]
    for it in est._predictors:
        for j, pred in enumerate(it):
            nd = pred.nodes
            if nd["is_categorical"].any():
                raise MethodError(f"{name} has categorical splits (bitsets); method 'tree' reads numeric splits only "
                                  "(use kernelshap)")
            leaf = nd["is_leaf"].astype(bool)
            trees[j].append(Tree(np.where(leaf, -1, nd["feature_idx"].astype(np.int64)),
                                 nd["num_threshold"].astype(np.float64),
                                 np.where(leaf, -1, nd["left"].astype(np.int64)),
                                 np.where(leaf, -1, nd["right"].astype(np.int64)),
                                 np.where(leaf, nd["value"], 0.0).astype(float), nd["count"].astype(float),
                                 np.float64, missing_left=nd["missing_go_to_left"].astype(bool)))
    return Ensemble(trees, base, p, output, np.float64)


def _constant(margin, trees: list[list[Tree]], p: int) -> np.ndarray:
    """The margin's constant per output: the library's margin at one row minus the trees' sum there."""
    x0 = np.zeros((1, p))
    m = np.asarray(margin(x0), float).reshape(1, -1)[0]
    return np.array([m[j] - sum(t.predict_one(x0[0]) for t in ts) for j, ts in enumerate(trees)])


def _xgboost(est: Any, output: str) -> Ensemble:
    """XGBoost gbtree models from their JSON model (arrays per tree): ``x < c`` goes to the left child
    (read as float32 ``x <= the float32 below c``), NaN down ``default_left``; leaf values are the
    leaves' ``split_conditions``; ``tree_info`` gives each tree's output."""
    import json

    import xgboost

    booster = est if type(est).__name__ == "Booster" else est.get_booster()
    if output not in ("raw", "predict"):
        raise NotASumOfTrees(f"XGBoost's {output} is a nonlinear transform of a sum of trees and does not decompose "
                          "tree by tree: explain output='raw' (the margin) with method 'tree', or the probability "
                          "with a sampling method (kernelshap)")
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    gb = learner["gradient_booster"]
    if gb.get("name") != "gbtree":
        raise MethodError(f"method 'tree' reads XGBoost's gbtree booster, not {gb.get('name')!r} (use kernelshap)")
    param = learner["learner_model_param"]
    if int(param.get("num_target", "1") or 1) > 1:
        raise MethodError("method 'tree' does not read XGBoost multi-target trees (use kernelshap)")
    k = max(1, int(param.get("num_class", "0") or 0))
    p = int(param["num_feature"])
    model = gb["model"]
    info = model.get("tree_info") or [0] * len(model["trees"])
    trees: list[list[Tree]] = [[] for _ in range(k)]
    for g, t in zip(info, model["trees"]):
        left = np.asarray(t["left_children"], np.int64)
        right = np.asarray(t["right_children"], np.int64)
        if any(t.get("split_type", [])):
            raise MethodError("XGBoost categorical splits are not supported by method 'tree' (use kernelshap)")
        leaf = left < 0
        cond = np.asarray(t["split_conditions"], np.float32)
        thr = np.nextafter(cond, np.float32(-np.inf)).astype(np.float64)     # x < c  <=>  x <= prev(c), float32
        trees[int(g)].append(Tree(np.where(leaf, -1, np.asarray(t["split_indices"], np.int64)), thr, left, right,
                                  np.where(leaf, cond.astype(np.float64), 0.0), np.asarray(t["sum_hessian"], float),
                                  np.float32, missing_left=np.asarray(t["default_left"], bool)))
    names = list(booster.feature_names or [])
    margin = lambda X: booster.predict(xgboost.DMatrix(X, feature_names=names or None), output_margin=True)  # noqa: E731
    return Ensemble(trees, _constant(margin, trees, p), p, output, np.float32)


def _lightgbm(est: Any, output: str) -> Ensemble:
    booster = est if type(est).__name__ == "Booster" else est.booster_
    if output not in ("raw", "predict"):
        raise NotASumOfTrees(f"LightGBM's {output} is a nonlinear transform of a sum of trees and does not decompose "
                          "tree by tree: explain output='raw' (the margin) with method 'tree', or the probability "
                          "with a sampling method (kernelshap)")
    dm = booster.dump_model()
    k = int(dm.get("num_tree_per_iteration", 1))
    p = int(dm["max_feature_idx"]) + 1
    infos = dm["tree_info"]
    scale = 1.0 / max(1, len(infos) // k) if dm.get("average_output") else 1.0
    trees: list[list[Tree]] = [[] for _ in range(k)]
    for i, info in enumerate(infos):
        rows: list[dict] = []

        def add(nd: dict) -> int:
            j = len(rows)
            rows.append({})
            if "leaf_value" in nd or "split_feature" not in nd:
                if "leaf_coeff" in nd:
                    raise MethodError("LightGBM linear trees are not supported by method 'tree'")
                rows[j] = {"leaf": float(nd.get("leaf_value", 0.0)), "cover": float(nd.get("leaf_count", 0))}
                return j
            if nd.get("decision_type") != "<=":
                raise MethodError("LightGBM categorical splits are not supported by method 'tree'")
            if nd.get("missing_type") == "Zero":
                raise MethodError("LightGBM treats zeros as missing in this model (zero_as_missing); not supported")
            lj, rj = add(nd["left_child"]), add(nd["right_child"])
            thr = float(nd["threshold"])
            # missing_type "NaN": NaN takes the default branch; "None": LightGBM compares NaN as 0
            ml = bool(nd.get("default_left", True)) if nd.get("missing_type") == "NaN" else 0.0 <= thr
            rows[j] = {"feature": int(nd["split_feature"]), "threshold": thr, "left": lj, "right": rj,
                       "cover": float(nd.get("internal_count", 0)), "missing_left": ml}
            return j
        add(info["tree_structure"])
        feat = np.array([r.get("feature", -1) for r in rows], np.int64)
        thr = np.array([r.get("threshold", 0.0) for r in rows])
        left = np.array([r.get("left", -1) for r in rows], np.int64)
        right = np.array([r.get("right", -1) for r in rows], np.int64)
        val = scale * np.array([r.get("leaf", 0.0) for r in rows])
        cover = np.array([r["cover"] for r in rows])
        mleft = np.array([r.get("missing_left", False) for r in rows], bool)
        trees[i % k].append(Tree(feat, thr, left, right, val, cover, np.float64, missing_left=mleft))
    margin = lambda X: booster.predict(X, raw_score=True)  # noqa: E731
    return Ensemble(trees, _constant(margin, trees, p), p, output, np.float64)
