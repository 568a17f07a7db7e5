"""PyTorch simulations of the committee machine and of the other grokking systems."""
