"""Benchmarks of jaxloss against optax, Keras 3, plain autodiff and PyTorch.

A package beside the library, not in it (the wheel does not ship it): run it from
a source checkout as ``python -m benchmarks`` (``python -m jaxloss bench`` hands
over to it). It imports jaxloss's public API only and iterates the registry
(:func:`jaxloss.declarations`), so a newly registered loss is benchmarked with no
edit here. :mod:`benchmarks.large_vocab` times ``linear_cross_entropy`` at LLM
shapes against the naive XLA form, Liger Kernel and PyTorch.
"""
