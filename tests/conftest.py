import numpy as np
import pytest

from whybox.datasets import shared_data_dir


@pytest.fixture(scope="session")
def shared():
    root = shared_data_dir()
    if root is None:
        pytest.skip("../shared/data is absent (tests that use the real shared data sets are skipped)")
    return root


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_configure(config):
    import matplotlib
    matplotlib.use("Agg")
