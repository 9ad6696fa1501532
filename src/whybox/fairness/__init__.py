"""Fairness of a model's decisions, and remedies with their price (FairLay-ML's questions for lay
users): group rates and gaps, the counterfactual flip test, proxies of a protected attribute, and
remedies (group thresholds, retraining without the attribute or its proxies, reweighing, a
fairness-constrained refit, a small search for the fairest model) re-evaluated on the same rows.

Fairlearn (``pip install 'whybox[fairness]'``) is needed only for the threshold and reductions remedies.
"""
from whybox.fairness.flip import FlipTest, flip_test
from whybox.fairness.groups import Decisions, Scorer, group_rates, groups_of
from whybox.fairness.proxies import find_proxies
from whybox.fairness.remedy import Remedy, RemedyReport, remedies

__all__ = ["Decisions", "FlipTest", "Remedy", "RemedyReport", "Scorer", "find_proxies", "flip_test", "group_rates",
           "groups_of", "remedies"]
