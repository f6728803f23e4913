"""Benchmarks of jaxloss against optax, Keras 3, plain autodiff and PyTorch (``python -m jaxloss bench``)."""
