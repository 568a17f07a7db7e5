"""Bayesian and kernel grokking systems.

datasets    : the small data sets (sine, one-zero, parity, modular, concealment families).
linear      : linear regression with a description-length objective (linear grokking).
gp          : exact and variational Gaussian processes (the RBF kernel, landscapes).
laplace     : the Laplace-approximation GP classifier.
bnn         : the mean-field Bayesian neural network.
concealment : the concealment experiments and the gap regression.
divergence  : TrainingDiverged, raised by every trainer at the first non-finite loss or weight.

Every module returns arrays and run objects; :func:`comparisons.store.write_record` stores them.
"""
