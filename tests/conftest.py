import os

import numpy as np
import pytest

# Keep BLAS/torch from oversubscribing the 2-core CI machines.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
