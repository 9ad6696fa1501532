"""Neighbourhoods: which perturbed inputs surround x, and with which weights.

Binary neighbourhoods (:mod:`~whybox.neighbourhoods.masks`) produce coalition masks z in {0,1}^d over
interpretable features, realised as z*x + (1-z)*b by a representation. Continuous neighbourhoods
(:mod:`~whybox.neighbourhoods.continuous`) produce points x + eps or b + alpha(x - b) in input space.
Every sampler takes a numpy Generator and returns designs that do not depend on x, so one design
serves every explained row (and results do not depend on how rows are chunked).
"""
