"""Tree ensembles read into one form: for each output, a list of trees whose leaf values, scaled and
summed (plus a constant), give the model's output for that output exactly.

Supported (scikit-learn): DecisionTree/ExtraTree classifiers (``predict_proba``) and regressors,
RandomForest/ExtraTrees classifiers (``predict_proba``: the mean of the trees' leaf class fractions)
and regressors, GradientBoosting regressors and classifiers on their margin
(``decision_function``; the probability is a nonlinear transform of a sum of trees and does not
decompose tree by tree). scikit-learn compares ``float32(x) <= threshold``; so do these trees.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from whybox.errors import MethodError


@dataclass
class Tree:
    feature: np.ndarray        # (nodes,) split feature, -1 at leaves
    threshold: np.ndarray      # (nodes,) go left when float32(x) <= threshold
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray          # (nodes,) the output's leaf value (scaled by the ensemble's factor)
    cover: np.ndarray          # (nodes,) training weight reaching the node (path-dependent TreeSHAP)

    def leaves(self) -> np.ndarray:
        return np.where(self.left < 0)[0]

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float32)
        node = np.zeros(len(X), np.int64)
        active = self.left[node] >= 0
        while active.any():
            i = np.where(active)[0]
            nd = node[i]
            go_left = X[i, self.feature[nd]] <= self.threshold[nd]
            node[i] = np.where(go_left, self.left[nd], self.right[nd])
            active[i] = self.left[node[i]] >= 0
        return self.value[node]


@dataclass
class Ensemble:
    trees: list[list[Tree]]     # per output
    constant: np.ndarray        # per output
    n_features: int
    output: str                 # the scikit-learn method whose outputs these are

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([c + sum((t.predict(X) for t in ts), np.zeros(len(X)))
                                for ts, c in zip(self.trees, self.constant)])


def _tree(t: Any, out: int, scale: float, classifier: bool) -> Tree:
    v = np.asarray(t.value, float)[:, 0, :]
    if classifier:
        v = v / np.where(v.sum(axis=1, keepdims=True) > 0, v.sum(axis=1, keepdims=True), 1.0)
    return Tree(np.where(t.children_left < 0, -1, t.feature).astype(np.int64), t.threshold.astype(np.float64),
                t.children_left.astype(np.int64), t.children_right.astype(np.int64), scale * v[:, out],
                t.weighted_n_node_samples.astype(float))


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
            raise MethodError(
                f"{name}'s {output} is a nonlinear transform of a sum of trees and does not decompose tree by "
                "tree: explain its margin (output='decision_function') with method 'tree', or the probability "
                "with a sampling method (kernelshap)")
        k = est.estimators_.shape[1]
        init = np.asarray(est._raw_predict_init(np.zeros((1, p), np.float32)), float).reshape(-1)
        lr = float(est.learning_rate)
        return Ensemble([[_tree(t.tree_, 0, lr, False) for t in est.estimators_[:, j]] for j in range(k)], init, p,
                        output)
    raise MethodError(f"method 'tree' reads scikit-learn decision trees, random forests, extra trees and gradient "
                      f"boosting; {name} is not one of them (use kernelshap, or shapley for d <= 16)")
