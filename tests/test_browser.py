"""Every report of a demo run, opened in headless Chromium: it renders, the summary comes
first, charts are there, and a screenshot is saved (tests/artifacts/screenshots/)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).parent / "artifacts" / "screenshots"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _chromium()
if CHROMIUM is None:
    pytestmark = pytest.mark.skipif(
        not os.environ.get("ICP_REQUIRE_BROWSER"), reason="headless Chromium is not installed"
    )


def _browser(tmp_path: Path, *args: str, timeout: int = 90) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.fail("ICP_REQUIRE_BROWSER is set but Chromium is not installed")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout
    )


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def _pages(run_dir: Path) -> list[Path]:
    return [run_dir / "index.html", *sorted(run_dir.glob("[0-9][0-9]_*.html"))]


@pytest.mark.browser
def test_every_report_renders_summary_first_with_charts(demo_run, tmp_path):
    pages = _pages(demo_run.out_dir)
    assert len(pages) >= 2
    for page in pages:
        proc = _browser(tmp_path, "--dump-dom", page.as_uri())
        dom = proc.stdout
        assert proc.returncode == 0 and "</html>" in dom, f"{page.name}: {proc.stderr[-500:]}"
        if page.name == "index.html":
            assert "icp-research" in dom.lower()
            continue
        summary = dom.find("icp-summary")
        assert summary != -1, f"{page.name} has no summary"
        first_table = dom.find("<table", summary + 1)
        first_figure = dom.find("<figure")
        # The summary comes before the evidence.
        assert first_figure == -1 or summary < first_figure, page.name
        assert first_table == -1 or summary < first_table, page.name
        charts = re.findall(r"<img[^>]+src=\"data:image/png;base64,", dom)
        assert charts, f"{page.name} shows no chart"
        for alt in re.findall(r"<img[^>]+alt=\"([^\"]*)\"", dom):
            assert alt.strip(), f"{page.name}: a chart without alt text"


@pytest.mark.browser
def test_screenshots_of_every_report(demo_run, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for page in _pages(demo_run.out_dir):
        target = SCREENSHOTS / f"{page.stem}.png"
        target.unlink(missing_ok=True)
        proc = _browser(
            tmp_path, f"--screenshot={target}", "--window-size=1280,2400", page.as_uri()
        )
        assert target.exists(), f"{page.name}: {proc.stderr[-500:]}"
        width, height = _png_size(target)
        assert (width, height) == (1280, 2400)
        assert target.stat().st_size > 20_000, f"{page.name} looks blank"
