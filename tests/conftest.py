"""Shared test setup: a non-interactive plotting backend, closed figures, seeded randomness."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from hypothesis import settings

os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")

# Property tests draw the same examples on every run and every machine (seeded, no example
# database): a failure is reproducible, and a pass is not luck of the draw.
settings.register_profile("seeded", derandomize=True, database=None)
settings.load_profile("seeded")

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


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The whole report suite run once on the demo data (real kernels); shared by e2e tests.

    Returns the :class:`icp_research.pipeline.runner.RunResult`; ``demo_run.out_dir`` is the run folder.
    """
    from icp_research.pipeline.runner import Progress, run_suite

    out = tmp_path_factory.mktemp("reports") / "demo"
    return run_suite(demo=True, out=out, progress=Progress(quiet=True))


def report_text(run, name: str) -> str:
    """The visible text of a rendered report (tags stripped, whitespace collapsed)."""
    import html
    import re

    markup = (run.out_dir / f"{name}.html").read_text(encoding="utf-8")
    markup = re.sub(r"<style.*?</style>", " ", markup, flags=re.S)
    markup = re.sub(r"<[^>]+>", " ", markup)
    return re.sub(r"\s+", " ", html.unescape(markup))


REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: int = 300):
    """Run ``icp-research`` in a fresh interpreter (as a user would), capturing its output."""
    import subprocess
    import sys

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    return subprocess.run(
        [sys.executable, "-m", "icp_research.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(REPO),
    )
