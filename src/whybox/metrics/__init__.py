"""Faithfulness, stability and agreement metrics for any explanation of any model.

Every metric returns one score per explained row (numpy array); :func:`whybox.evaluate` aggregates
them into means with confidence intervals. Perturbations reuse the engine (masking game and chunked
model calls), so metrics cost model queries only, counted like any explanation's.
"""
from whybox.metrics.agreement import (agreement, agreement_auc, feature_agreement, ground_truth, pairwise_rank_agreement,
                                      rank_agreement, rank_correlation, sign_agreement,
                                      signed_rank_agreement)
from whybox.metrics.faithfulness import (deletion_curve, infidelity, insertion_curve, local_fidelity, pgi,
                                         pgi_auc, pgu, pgu_auc)
from whybox.metrics.neighbourhood import Gaussian, Removal, parse_neighbourhood
from whybox.metrics.stability import max_sensitivity, relative_stability
from whybox.metrics.text import comprehensiveness, sufficiency, word_deletion_curve, word_insertion_curve

__all__ = [
    "pgi", "pgu", "pgi_auc", "pgu_auc", "deletion_curve", "insertion_curve", "infidelity", "local_fidelity",
    "relative_stability", "max_sensitivity", "agreement_auc", "feature_agreement", "rank_agreement", "sign_agreement",
    "signed_rank_agreement", "rank_correlation", "pairwise_rank_agreement", "agreement", "ground_truth",
    "Removal", "Gaussian", "parse_neighbourhood", "comprehensiveness", "sufficiency", "word_deletion_curve",
    "word_insertion_curve",
]
