"""Shared test setup: a non-interactive plotting backend, closed figures, seeded randomness."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


def write_project(directory: Path, files: dict[str, str | bytes], config: str) -> Path:
    """Write export files and an icp.toml into ``directory``; return the config path."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    config_path = directory / "icp.toml"
    config_path.write_text(config, encoding="utf-8")
    return config_path
