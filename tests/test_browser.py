"""Every report of a demo run, opened in headless Chromium: it renders, the summary comes
first, charts are there, and a screenshot is saved (tests/artifacts/screenshots/)."""

from __future__ import annotations

import contextlib
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


# ---------------------------------------------------------------------------------------------
# Layout on screen and on paper, measured in Chromium over the DevTools protocol


class _DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe
    (``--remote-debugging-pipe``: the browser reads commands on fd 3 and answers on fd 4,
    one JSON message per NUL byte), so no websocket client is needed."""

    def __init__(self, profile: Path):
        import json

        self._json = json
        to_browser, self._writer = os.pipe()
        self._reader, from_browser = os.pipe()

        def wire():  # in the child: the pipe ends become fds 3 and 4
            read_end, write_end = os.dup(to_browser), os.dup(from_browser)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
        flags += ["--no-first-run", "--disable-background-networking", "--disable-sync"]
        self.process = subprocess.Popen(
            [CHROMIUM, *flags, "--remote-debugging-pipe", f"--user-data-dir={profile}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=wire,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._id = 0
        self._events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.page("Page.enable")

    def _receive(self, timeout: float) -> dict:
        import select
        import time

        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._reader], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._reader, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return self._json.loads(message)

    def call(self, method: str, *, session: str | None = None, timeout: float = 60, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._writer, self._json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self._id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply.get("result", {})
            self._events.append(reply)

    def page(self, method: str, **params):
        return self.call(method, session=self._session, **params)

    def open(self, page: Path, width: int, *, media: str = "") -> None:
        """Load ``page`` in a viewport ``width`` CSS pixels wide, as ``media`` ("print" or
        the screen)."""
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.page("Emulation.setEmulatedMedia", media=media)
        self._events.clear()
        self.page("Page.navigate", url=page.as_uri())
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            self._events.append(self._receive(60))

    def evaluate(self, expression: str):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def pdf(self, paper: tuple[float, float], *, landscape: bool = False) -> bytes:
        import base64

        width, height = paper
        data = self.page(
            "Page.printToPDF",
            paperWidth=width,
            paperHeight=height,
            landscape=landscape,
            printBackground=True,
            displayHeaderFooter=False,
        )["data"]
        return base64.b64decode(data)

    def close(self) -> None:
        with contextlib.suppress(TimeoutError, RuntimeError, OSError, AssertionError):
            self.call("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._writer)
        os.close(self._reader)


@pytest.fixture(scope="module")
def devtools(tmp_path_factory):
    if CHROMIUM is None:
        pytest.fail("ICP_REQUIRE_BROWSER is set but Chromium is not installed")
    browser = _DevTools(tmp_path_factory.mktemp("devtools") / "profile")
    yield browser
    browser.close()


# Paper in inches, and the width the page's content gets on it at 96 CSS px per inch: the
# reports' @page margins are 14 mm left and right, the one-pager's 10 mm.
PAPER = {"A4": (8.27, 11.69), "Letter": (8.5, 11.0)}


def _content_width(inches: float, margin_mm: float) -> int:
    return int((inches - 2 * margin_mm / 25.4) * 96)


# Every element whose box leaves the viewport, or whose content is wider than its box, unless
# it sits in a box that scrolls sideways (a wide table's wrapper); every table and figure with
# its right edge and whether it scrolls inside its own box.
_MEASURE = """(() => {
  const width = document.documentElement.clientWidth;
  const scroller = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const x = getComputedStyle(p).overflowX;
      if (x === 'auto' || x === 'scroll') return p;
    }
    return null;
  };
  const label = (el) => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '');
  const cut = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || scroller(el)) continue;
    const spills = getComputedStyle(el).overflowX === 'visible' && el.clientWidth > 0
      && el.scrollWidth > el.clientWidth + 1;
    if (r.right > width + 1 || r.left < -1 || spills)
      cut.push(label(el) + ' [' + Math.round(r.left) + ', ' + Math.round(r.right) + ']: '
        + (el.textContent || el.alt || '').trim().slice(0, 60));
  }
  const tables = [...document.querySelectorAll('table')].map((t) => {
    const box = scroller(t);
    return {right: t.getBoundingClientRect().right, scrolls: !!box,
            box_right: box ? box.getBoundingClientRect().right : null};
  });
  const figures = [...document.querySelectorAll('img, figure')].map((f) => {
    const r = f.getBoundingClientRect();
    return {right: r.right, width: r.width, natural: f.naturalWidth || null};
  });
  return {width, scroll_width: document.documentElement.scrollWidth, cut, tables, figures};
})()"""


def _onepager(run_dir: Path) -> Path:
    path = run_dir / "artifacts" / "icp_onepager.html"
    assert path.exists(), "the demo run wrote no one-pager"
    return path


@pytest.mark.browser
@pytest.mark.parametrize("width", [1366, 390])
def test_no_page_overflows_at_laptop_and_phone_width(demo_run, devtools, width):
    wide_tables_scroll = 0
    for page in _pages(demo_run.out_dir):
        devtools.open(page, width)
        m = devtools.evaluate(_MEASURE)
        assert m["width"] == width
        assert m["scroll_width"] <= width, f"{page.name} scrolls sideways at {width}px"
        assert m["cut"] == [], f"{page.name} at {width}px: {m['cut'][:5]}"
        for table in m["tables"]:
            # A table wider than the page scrolls inside its own box, which fits the page.
            assert table["right"] <= width + 1 or table["scrolls"], page.name
            if table["scrolls"]:
                assert table["box_right"] <= width + 1, page.name
                wide_tables_scroll += table["right"] > table["box_right"] + 1
        for figure in m["figures"]:
            # Charts scale down to the page (max-width: 100%), never past its edge.
            assert figure["right"] <= width + 1 and figure["width"] > 0, page.name
        # Every report has charts; the dashboard its two (ICP vs the rest, tiers).
        assert len(m["figures"]) >= (4 if page.name == "index.html" else 1), page.name
    if width == 390:
        # On a phone the widest tables do not fit: they scroll inside their own box.
        assert wide_tables_scroll >= 1


@pytest.mark.browser
@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_print_layout_fits_the_paper(demo_run, devtools, paper):
    portrait = _content_width(PAPER[paper][0], 14)
    landscape = _content_width(PAPER[paper][1], 10)
    pages = [(p, portrait) for p in _pages(demo_run.out_dir)]
    pages.append((_onepager(demo_run.out_dir), landscape))
    for page, width in pages:
        devtools.open(page, width, media="print")
        m = devtools.evaluate(_MEASURE)
        assert m["scroll_width"] <= width, f"{page.name} is wider than {paper} paper"
        assert m["cut"] == [], f"{page.name} on {paper}: {m['cut'][:5]}"
        # On paper nothing scrolls: every table and chart ends within the page's width.
        for item in m["tables"] + m["figures"]:
            assert item["right"] <= width + 1, f"{page.name}: cut at {item['right']:.0f}px"
        if page.name.startswith("0"):
            hidden = devtools.evaluate(
                "[...document.querySelectorAll('.icp-toc, .anchor-link')]"
                ".every((e) => getComputedStyle(e).display === 'none')"
            )
            assert hidden, f"{page.name}: the table of contents prints"
    # A link to another file of the run prints its file name after its text.
    devtools.open(demo_run.out_dir / "index.html", portrait, media="print")
    after = devtools.evaluate(
        "getComputedStyle(document.querySelector('a[href$=\".html\"]'), '::after').content"
    )
    assert re.fullmatch(r'" \(" attr\(href\) "\)"|" \([^"]+\.html\)"', after), after


def _pdf_pages(pdf: bytes) -> int:
    assert pdf.startswith(b"%PDF-"), "not a PDF"
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


@pytest.mark.browser
def test_print_to_pdf_on_a4_and_letter(demo_run, devtools):
    counts: dict[tuple[str, str], int] = {}
    onepager = _onepager(demo_run.out_dir)
    report = demo_run.out_dir / "02_churn_analysis.html"
    for page, landscape in [
        (onepager, True),
        (demo_run.out_dir / "index.html", False),
        (report, False),
    ]:
        devtools.open(page, 1366)
        for paper, size in PAPER.items():
            pdf = devtools.pdf(size, landscape=landscape)
            counts[(page.name, paper)] = _pdf_pages(pdf)
            (SCREENSHOTS.parent / "print").mkdir(parents=True, exist_ok=True)
            (SCREENSHOTS.parent / "print" / f"{page.stem}.{paper}.pdf").write_bytes(pdf)
    for paper in PAPER:
        # The one-pager is one landscape sheet on either paper.
        assert counts[("icp_onepager.html", paper)] == 1, counts
        assert 1 <= counts[("index.html", paper)] <= 6, counts
        # The summary has the first page; the evidence follows without runaway blank pages.
        assert 3 <= counts[(report.name, paper)] <= 30, counts
    # Letter is shorter than A4: never fewer pages, and not many more.
    a4, letter = counts[(report.name, "A4")], counts[(report.name, "Letter")]
    assert a4 <= letter <= a4 + 4, counts


@pytest.mark.browser
def test_every_report_ends_with_how_to_read_it(demo_run, devtools):
    for page in _pages(demo_run.out_dir)[1:]:
        devtools.open(page, 1366)
        found = devtools.evaluate(
            "(() => { const g = document.querySelector('main .icp-glossary');"
            " return g && {last: g === document.querySelector('main').lastElementChild,"
            " terms: [...g.querySelectorAll('dt')].map((d) => d.textContent),"
            " line: g.querySelector('.icp-howto').textContent}; })()"
        )
        assert found, f"{page.name} has no glossary"
        assert found["last"] and found["line"].startswith("How to read this")
        assert "Interval (95% CI)" in found["terms"] and len(found["terms"]) >= 3, found
