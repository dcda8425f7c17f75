"""Shared pytest configuration: the `slow` marker runs only with --runslow."""

import os

import pytest

from toolcheck import check_item

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


def pytest_runtest_setup(item):
    check_item(item)  # a missing tool: skip here, failure under RF8SIM_REQUIRE_TOOLS=1 (CI)


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with `make test-slow` (--runslow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: torch's thread pool only adds contention on a shared 2-core machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _cache_root_per_test():
    """A test that runs the CLI with --cache-dir sets the process-wide cache root (and $RF8SIM_CACHE);
    restore both afterwards so the next test sees the root it would see alone."""
    from rf8sim.infra import cache

    root, env = cache._ROOT, os.environ.get(cache.ENV)
    yield
    cache._ROOT = root
    if env is None:
        os.environ.pop(cache.ENV, None)
    else:
        os.environ[cache.ENV] = env
