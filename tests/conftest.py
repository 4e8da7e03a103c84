import pytest

from dissect.engine import data


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """100 train pairs (a quarter noisy) and 30 clean test pairs, 32 px."""
    out = tmp_path_factory.mktemp("data") / "tiny"
    data.make_synthetic(out, n=100, test_n=30, noise_ratio=0.25, noise_type="shuffle", seed=3, shard_size=40)
    return out
