"""Surrogates (losses): how a simple model g is fitted to the model's outputs on a neighbourhood.

Because designs are shared across rows, every surrogate here is a *linear map* from the outputs on
the design to attributions, computed once and applied to all rows with one matrix product.
"""
