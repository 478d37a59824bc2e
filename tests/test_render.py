"""Stakeholder HTML: notebook reports, the run dashboard and the reports index.

The notebooks here are built with nbformat to look like papermill's output (tagged parameter
cells, execution counts, stream / display / error outputs), so no kernel is needed.
"""

from __future__ import annotations

import base64
import functools
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from icp_research.reporting import display as report
from icp_research.reporting.render import (
    notebook_failure,
    notebook_title,
    render_notebook,
    render_reports_index,
    render_run_index,
    sanitize_html,
)

matplotlib.use("Agg")

ARTIFACTS = Path(__file__).parent / "artifacts"
HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=alert(1)>"

# A remote reference anywhere a browser would fetch or follow it.
REMOTE = re.compile(
    r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|@import|url\(\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)


def _save(name: str, text: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_text(text, encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _png() -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2.5))
    ax.bar(["ICP", "rest"], [0.42, 0.24], color=["#0173B2", "#949494"])
    ax.set_title("Win rate")
    return report.figure(ax, alt="Win rate: ICP accounts vs the rest").markup


@functools.lru_cache(maxsize=1)
def _raw_png() -> str:
    import io

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3], [3, 1, 2])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _display(html: str, text: str = "<HTML>") -> nbformat.NotebookNode:
    return new_output("display_data", data={"text/html": html, "text/plain": text})


def executed_notebook(*, company: str = "Acme Corp", fail: bool = False) -> nbformat.NotebookNode:
    """A notebook as papermill leaves it: parameters, injected parameters, mixed outputs."""
    by_industry = pd.DataFrame(
        {
            "industry": [company, "Retail", "Healthcare"],
            "accounts": [412, 380, 96],
            "win_rate": [0.412, 0.236, 0.190],
            "lift": [1.62, 0.93, 0.75],
        }
    )
    cells = [
        new_markdown_cell("# Data overview\n\nWhat was loaded, how complete it is, key totals."),
        new_code_cell(
            "config_path: str = 'icp.toml'  # PARAM_SOURCE_MARKER",
            metadata={"tags": ["parameters"]},
        ),
        new_code_cell(
            "# Parameters\nconfig_path = '/secret/INJECTED_MARKER.toml'\n",
            metadata={"tags": ["injected-parameters"]},
            execution_count=1,
        ),
        new_code_cell(
            "from icp_research import report  # CODE_MARKER",
            execution_count=2,
            outputs=[
                new_output("stream", name="stderr", text="UserWarning: STDERR_MARKER\n"),
                new_output("stream", name="stdout", text="   \n"),
            ],
        ),
        new_markdown_cell("## Coverage\n\nWhich tables were provided and for which period."),
        new_code_cell(
            "report.table(by_industry)",
            execution_count=3,
            outputs=[
                _display(report.table(by_industry, caption="Accounts by industry").markup),
                new_output("stream", name="stdout", text=f"Loaded 3,000 accounts for {company}\n"),
            ],
        ),
        new_markdown_cell("### Win rate by industry\n\nDeals won out of deals closed."),
        new_code_cell(
            "report.figure(ax, alt=...)",
            execution_count=4,
            outputs=[
                _display(_png()),
                new_output(
                    "execute_result",
                    data={"text/plain": "Text(0.5, 1.0, 'Win rate')"},
                    execution_count=4,
                ),
            ],
        ),
        new_code_cell(
            "plt.show()",
            execution_count=5,
            outputs=[
                new_output(
                    "display_data",
                    data={
                        "image/png": _raw_png(),
                        "text/plain": "<Figure size 300x200 with 1 Axes>",
                    },
                )
            ],
        ),
        new_code_cell(
            "by_industry",
            execution_count=6,
            outputs=[
                new_output(
                    "execute_result",
                    data={"text/plain": by_industry.to_string()},
                    execution_count=6,
                )
            ],
        ),
        new_markdown_cell("## Data quality"),
        new_code_cell(
            "report.callout(...)",
            execution_count=7,
            outputs=[
                _display(
                    report.callout("2 accounts have no industry.", "warning").markup
                    + report.not_enough_evidence("churn", "no subscriptions table").markup
                    + report.kpis(
                        {"Customers": "1,204", "ARR": "$18.2M", "Win rate": "31% (30–33%)"}
                    ).markup
                )
            ],
        ),
    ]
    if fail:
        cells.append(
            new_code_cell(
                "facts['arr'].sum()",
                execution_count=8,
                metadata={"papermill": {"exception": True, "status": "failed"}},
                outputs=[
                    new_output(
                        "error",
                        ename="KeyError",
                        evalue=f"'arr' missing for {company}",
                        traceback=["\x1b[0;31mKeyError\x1b[0m: TRACEBACK_MARKER"],
                    )
                ],
            )
        )
        cells.append(new_markdown_cell("## After the failure\n\nAFTER_FAILURE_MARKER"))
    cells += [
        new_markdown_cell("## Summary"),
        new_code_cell(
            "report.summary(...)",
            execution_count=9,
            outputs=[
                _display(
                    report.summary(
                        [f"{company} is the best segment: win rate 41% (36–46%, n=412).", "x"],
                        caveats=["Deals cluster by account; intervals account for it."],
                    ).markup
                )
            ],
        ),
    ]
    return new_notebook(
        cells=cells,
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )


def meta(**overrides) -> dict:
    base = {
        "project": "Acme Analytics",
        "title": None,
        "run": "2026Q3",
        "quarter": "2026Q3",
        "as_of": "2026-09-30",
        "kit_version": "0.1.0",
        "generated_at": "2026-11-23T16:00:00+00:00",
        "inputs": [
            {"table": "accounts", "path": "exports/accounts.csv", "rows": 3000},
            {"table": "opportunities", "path": "exports/opportunities.csv", "rows": 12480},
        ],
        "reproduce": "icp-research run --config icp.toml --quarter 2026Q3",
        "status": "ok",
        "failed_cell": None,
        "error": None,
    }
    base.update(overrides)
    return base


def manifest(**overrides) -> dict:
    base = {
        "kit_version": "0.1.0",
        "run": "2026Q3",
        "project": "Acme Analytics",
        "quarter": "2026Q3",
        "as_of": "2026-09-30",
        "started_at": "2026-11-23T16:00:00+00:00",
        "finished_at": "2026-11-23T16:02:41+00:00",
        "demo": False,
        "config": "icp.toml",
        "parameters": {"as_of": "2026-09-30"},
        "inputs": [
            {
                "table": "accounts",
                "path": "exports/accounts.csv",
                "sha256": "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56abcd",
                "rows": 3000,
            }
        ],
        "notebooks": [
            {
                "name": "00_data_overview",
                "title": "Data overview",
                "status": "ok",
                "reason": None,
                "failed_cell": None,
                "error": None,
                "seconds": 3.24,
                "html": "00_data_overview.html",
                "ipynb": "00_data_overview.ipynb",
            },
            {
                "name": "03_churn",
                "title": "Churn and retention",
                "status": "skipped",
                "reason": "no subscriptions table",
                "failed_cell": None,
                "error": None,
                "seconds": 0.0,
                "html": None,
                "ipynb": None,
            },
            {
                "name": "04_subgroups",
                "title": "Best-customer subgroups",
                "status": "failed",
                "reason": None,
                "failed_cell": 7,
                "error": "KeyError: 'arr'",
                "seconds": 12.5,
                "html": "04_subgroups.html",
                "ipynb": "04_subgroups.ipynb",
            },
        ],
        "headline": {"Customers": "1,204", "ARR": "$18.2M", "Win rate": "31% (30-33%)"},
        "icp_statement": "Mid-market software companies (50-500 employees) using Salesforce.",
        "artifacts": ["artifacts/subgroups.csv", "artifacts/icp.json", "artifacts/manifest.json"],
        "versions": {"python": "3.11.7", "pandas": "2.3.3"},
    }
    base.update(overrides)
    return base


@pytest.fixture(scope="module")
def ok_html() -> str:
    html = render_notebook(executed_notebook(), meta=meta())
    _save("report_ok.html", html)
    return html


class _ElementCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict]]:
    """Every element a browser would build: (tag, attributes)."""
    collector = _ElementCollector()
    collector.feed(html)
    return collector.elements


def _main(html: str) -> str:
    return html.split('<main class="icp-main">', 1)[1].split("</main>", 1)[0]


# ---------------------------------------------------------------------------------------------
# render_notebook


def test_no_code_parameters_or_stderr(ok_html):
    for marker in (
        "CODE_MARKER",
        "PARAM_SOURCE_MARKER",
        "INJECTED_MARKER",
        "STDERR_MARKER",
        "report.table(by_industry)",
        "In&nbsp;[",
        "Text(0.5, 1.0",
        "&lt;Figure size",
    ):
        assert marker not in ok_html, marker
    # Real outputs survive: stdout, the table, both images, a plain-text execute_result.
    assert "Loaded 3,000 accounts for Acme Corp" in ok_html
    assert "<caption>Accounts by industry</caption>" in ok_html
    assert ok_html.count('src="data:image/png;base64,') == 2
    assert "Healthcare" in _main(ok_html).split("</table>", 1)[1]  # the to_string() output
    assert 'alt="Win rate: ICP accounts vs the rest"' in ok_html


def test_summary_comes_first_and_lone_summary_heading_is_dropped(ok_html):
    main = _main(ok_html)
    summary = main.index('class="icp-summary"')
    assert summary < main.index("<table")
    assert summary < main.index("<h2 id=")
    assert summary < main.index("<img")
    # The intro subtitle stays above the summary; the H1 moved to the masthead.
    assert main.index("key totals") < summary
    assert "<h1" not in main
    # "## Summary" was written above the box in the notebook; it must not be left empty.
    assert 'id="Summary"' not in main


def test_table_of_contents_lists_headings_in_order(ok_html):
    nav = ok_html.split('<nav aria-label="Contents" class="icp-toc">', 1)[1].split("</nav>")[0]
    links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', nav)
    assert links == [
        ("summary", "Summary"),
        ("Coverage", "Coverage"),
        ("Win-rate-by-industry", "Win rate by industry"),
        ("Data-quality", "Data quality"),
    ]
    for anchor, _ in links:
        assert f'id="{anchor}"' in ok_html


def test_header_and_footer_show_project_snapshot_and_version(ok_html):
    header = ok_html.split("</header>", 1)[0]
    assert "Acme Analytics" in header
    assert '<h1 class="icp-title">Data overview</h1>' in header
    assert "2026-09-30" in header and "2026Q3" in header
    assert "icp-research 0.1.0" in header
    assert "accounts 3,000 rows" in header and "opportunities 12,480 rows" in header
    footer = ok_html.split("<footer", 1)[1]
    assert "2026-11-23 16:00 UTC" in footer
    assert "icp-research 0.1.0" in footer
    assert "icp-research run --config icp.toml --quarter 2026Q3" in footer


def test_self_contained(ok_html):
    assert not REMOTE.search(ok_html)
    assert "http://" not in ok_html and "https://" not in ok_html
    # No JavaScript at all: nothing in the report needs it.
    assert "<script" not in ok_html.lower()
    assert "<link" not in ok_html.lower()
    assert "Content-Security-Policy" in ok_html
    assert "@media print" in ok_html


def test_hostile_text_is_escaped_everywhere():
    hostile = HOSTILE_SCRIPT + HOSTILE_IMG
    nb = executed_notebook(company=hostile, fail=True)
    html = render_notebook(
        nb,
        meta=meta(
            project=hostile,
            title=f"Overview {HOSTILE_SCRIPT}",
            run=HOSTILE_IMG,
            inputs=[{"table": HOSTILE_SCRIPT, "path": HOSTILE_IMG, "rows": 1}],
            reproduce=f"icp-research run --out '{HOSTILE_IMG}'",
            status="failed",
            failed_cell=None,
            error=None,
        ),
    )
    _save("report_hostile.html", html)
    elements = _elements(html)
    assert "script" not in {tag for tag, _ in elements}
    assert not [attrs for _, attrs in elements if any(name.startswith("on") for name in attrs)]
    assert not [attrs for tag, attrs in elements if tag == "img" and attrs.get("src") == "x"]
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    header, main = html.split("</header>", 1)[0], _main(html)
    assert f'<p class="icp-brand">{escaped} · ICP research</p>' in header
    assert '<h1 class="icp-title">Overview &lt;script&gt;alert(1)&lt;/script&gt;</h1>' in header
    assert "<title>Overview &lt;script&gt;" in html
    assert f"<td>{escaped}</td>" in main  # a table cell built by icp_research.reporting.display
    assert f"Loaded 3,000 accounts for {escaped}" in main  # stdout
    assert f"missing for {escaped}" in main.split("</div>", 1)[0]  # the failure banner
    assert "&lt;img src=x onerror=alert(1)&gt;" in html.split("<footer", 1)[1]


def test_failed_notebook_shows_banner_and_stops_at_the_failing_cell():
    html = render_notebook(
        executed_notebook(fail=True),
        meta=meta(status="failed", failed_cell=None, error=None, ipynb="00_data_overview.ipynb"),
    )
    _save("report_failed.html", html)
    main = _main(html)
    assert main.index('class="icp-banner icp-banner-failed"') < main.index("<table")
    assert "This report failed at cell 8: <code>KeyError: 'arr' missing for Acme Corp" in html
    assert "00_data_overview.ipynb" in main
    assert "TRACEBACK_MARKER" not in html and "\x1b" not in html
    assert "AFTER_FAILURE_MARKER" not in html
    # The summary displayed after the failure did not run: it is not shown either.
    assert "is the best segment" not in html


def test_failure_banner_uses_runner_values_when_given():
    html = render_notebook(
        executed_notebook(),
        meta=meta(status="failed", failed_cell=12, error="Kernel died\nwhile running"),
    )
    assert "This report failed at cell 12: <code>Kernel died while running</code>" in html


def test_notebook_failure_and_title_helpers():
    failed = executed_notebook(fail=True)
    failure = notebook_failure(failed)
    assert failure is not None
    assert failure.cell == 8
    assert failure.error == "KeyError: 'arr' missing for Acme Corp"
    assert failed.cells[failure.cell_index].source == "facts['arr'].sum()"
    assert notebook_failure(executed_notebook()) is None
    assert notebook_title(failed) == "Data overview"

    exit_zero = new_notebook(
        cells=[
            new_code_cell(
                "sys.exit(0)",
                outputs=[new_output("error", ename="SystemExit", evalue="0", traceback=[])],
            )
        ]
    )
    assert notebook_failure(exit_zero) is None
    killed = new_notebook(
        cells=[
            new_code_cell("x", execution_count=None, metadata={"papermill": {"exception": True}})
        ]
    )
    assert notebook_failure(killed).cell == 1


def test_render_from_path_does_not_modify_the_notebook(tmp_path):
    nb = executed_notebook()
    path = tmp_path / "00_data_overview.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    html = render_notebook(path, meta={"project": "Acme Analytics"})
    assert path.read_bytes() == before
    assert '<h1 class="icp-title">Data overview</h1>' in html
    # An in-memory notebook is not changed either.
    cells = len(nb.cells)
    render_notebook(nb, meta={})
    assert len(nb.cells) == cells and "parameters" in nb.cells[1].metadata["tags"]


def test_html_outputs_are_sanitized_and_markdown_outputs_rendered():
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Odd outputs"),
            new_code_cell(
                "display(...)",
                execution_count=1,
                outputs=[
                    _display(
                        "<div class='icp-callout icp-info' onclick='steal()'>hi"
                        "<script>alert(2)</script><style>body{background:url(https://x.y/a.png)}"
                        "</style><a href='https://evil.example/'>remote</a>"
                        "<a href='javascript:alert(3)'>js</a><a href='artifacts/x.csv'>csv</a>"
                        "<iframe src='https://x.y'><p>inside</p></iframe></div>"
                    ),
                    new_output(
                        "display_data",
                        data={"text/markdown": f"**Top segment:** {HOSTILE_SCRIPT}"},
                    ),
                    new_output(
                        "display_data",
                        data={
                            "application/javascript": "alert(4)",
                            "text/plain": "JS_FALLBACK_TEXT",
                        },
                    ),
                ],
            ),
        ]
    )
    html = render_notebook(nb, meta={})
    main = _main(html)
    assert '<div class="icp-callout icp-info">hi' in main
    assert "onclick" not in main and "alert(2)" not in main and "alert(4)" not in main
    assert "evil.example" not in main and "javascript:" not in main and "inside" not in main
    assert '<a href="artifacts/x.csv">csv</a>' in main
    assert "<a>remote</a>" in main
    assert "<strong>Top segment:</strong> &lt;script&gt;" in main
    assert "JS_FALLBACK_TEXT" in main
    assert not REMOTE.search(html)


def test_sanitize_html_keeps_report_fragments_intact():
    fragment = (
        report.table(pd.DataFrame({"segment": ["a & b"], "n": [3]}), caption="c").markup
        + report.summary(["one"], caveats=["two"]).markup
        + _png()
    )
    cleaned = sanitize_html(fragment)
    # Only the quoting style changes; every element, class and image survives.
    assert cleaned == fragment.replace("'", '"')
    assert sanitize_html("<p>1 < 2 &amp; <b>x</b></p>") == "<p>1 &lt; 2 &amp; <b>x</b></p>"
    assert sanitize_html("<img src='https://x.y/p.png' alt='a'>") == '<img alt="a">'


# ---------------------------------------------------------------------------------------------
# render_run_index


def test_run_index_dashboard():
    html = render_run_index(manifest())
    _save("run_index.html", html)
    main = _main(html)
    assert "Acme Analytics" in html and "2026-09-30" in html and "2026Q3" in html
    # KPI tiles and the ICP statement come before the list of reports.
    assert main.index("icp-kpi") < main.index("icp-statement") < main.index("icp-notebooks")
    assert '<div class="icp-kpi-value">$18.2M</div><div class="icp-kpi-label">ARR</div>' in main
    assert "Mid-market software companies" in main
    assert "1 of 3 reports failed." in main
    rows = main.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("</tr>")
    ok_row, skipped_row, failed_row = rows[:3]
    assert '<a href="00_data_overview.html">Data overview</a>' in ok_row
    assert 'icp-badge-ok">ok<' in ok_row and "3.2 s" in ok_row
    assert 'icp-badge-skipped">skipped<' in skipped_row
    assert "no subscriptions table" in skipped_row and "<a " not in skipped_row
    assert 'icp-badge-failed">failed<' in failed_row
    assert "Failed at cell 7: <code>KeyError: &#39;arr&#39;</code>" in failed_row
    assert '<a href="04_subgroups.ipynb">04_subgroups.ipynb</a>' in failed_row
    assert '<a href="artifacts/subgroups.csv">subgroups.csv</a>' in main
    assert "ab12cd34ef56" in main and "3,000" in main and "accounts.csv" in main
    assert "python 3.11.7" in main
    assert "icp-research run --config icp.toml --quarter 2026Q3" in html
    assert not REMOTE.search(html) and "<script" not in html.lower()


def test_run_index_tolerates_a_minimal_manifest_and_refuses_unsafe_links():
    html = render_run_index({"run": "demo"})
    assert "This run has no reports." in html
    hostile = manifest(
        project=HOSTILE_SCRIPT,
        icp_statement=HOSTILE_IMG,
        headline={HOSTILE_SCRIPT: HOSTILE_IMG},
        notebooks=[
            {"name": "x", "title": HOSTILE_SCRIPT, "status": "ok", "html": "javascript:alert(1)"},
            {
                "name": "y",
                "title": "Y",
                "status": "failed",
                "error": HOSTILE_IMG,
                "ipynb": "../../etc/passwd",
            },
            {"name": "z", "title": "Z", "status": "ok", "html": "https://evil.example/z.html"},
        ],
        artifacts=["/etc/passwd", "artifacts/ok.csv"],
        inputs=[{"table": HOSTILE_SCRIPT, "path": HOSTILE_IMG, "rows": "many", "sha256": None}],
    )
    html = render_run_index(hostile)
    _save("run_index_hostile.html", html)
    assert "<script" not in html.lower() and "<img" not in html
    assert "javascript:" not in html and "evil.example" not in html
    assert 'href="../../etc/passwd"' not in html and 'href="/etc/passwd"' not in html
    assert '<a href="artifacts/ok.csv">' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ---------------------------------------------------------------------------------------------
# render_reports_index


def test_reports_index_lists_runs_newest_first():
    runs = [
        manifest(
            run="2026Q1",
            quarter="2026Q1",
            as_of="2026-03-31",
            headline={"Customers": "1,050", "ARR": "$15.0M"},
        ),
        manifest(run="2026Q3", as_of="2026-09-30", finished_at="2026-10-02T09:00:00+00:00"),
        manifest(run="2026Q3-rerun", as_of="2026-09-30", finished_at="2026-10-05T09:00:00+00:00"),
        manifest(
            run="2026Q2",
            quarter="2026Q2",
            as_of="2026-06-30",
            notebooks=[{"name": "a", "status": "ok"}],
        ),
    ]
    html = render_reports_index(runs)
    _save("reports_index.html", html)
    table = html.split('<table class="icp-table icp-runs">', 1)[1]
    order = re.findall(r'<a href="([^"]+)/index.html">', table)
    assert order == ["2026Q3-rerun", "2026Q3", "2026Q2", "2026Q1"]
    assert '<th class="num">Customers</th>' in table and '<th class="num">ARR</th>' in table
    # The newest run's labels head the columns; older runs show theirs or a dash.
    last_row = table.split("<tr>")[-1]
    assert "1,050" in last_row and "$15.0M" in last_row and "–" in last_row
    assert 'icp-badge-failed">1 failed<' in table and 'icp-badge-ok">1 ok<' in table
    assert "Mid-market software" in table
    # The page opens with the latest run's tiles and a link to its dashboard.
    assert html.index("Latest run: 2026Q3-rerun") < html.index("icp-runs")
    assert not REMOTE.search(html) and "<script" not in html.lower()


def test_reports_index_handles_no_runs_and_odd_names():
    assert "No runs yet" in render_reports_index([])
    html = render_reports_index([manifest(run="../escape"), {"as_of": None}])
    assert 'href="../escape' not in html
    assert "(unnamed run)" in html


# ---------------------------------------------------------------------------------------------
# Chart titles and the glossary


def test_long_chart_titles_wrap_inside_the_figure():
    import matplotlib.pyplot as plt

    report.set_style()
    title = (
        "Win rate of accounts whose referral source is a partner, an event or a customer "
        "referral, by quarter, against every other account in the latest quarters"
    )
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([0, 1, 2], [0.2, 0.3, 0.25])
    ax.set_title(title)
    fig.suptitle("Fit score " * 40)
    report.wrap_titles(fig)
    fig.canvas.draw()  # the layout a saved figure gets
    renderer = fig.canvas.get_renderer()
    lines = ax.get_title().split("\n")
    assert 2 <= len(lines) <= report.MAX_TITLE_LINES
    assert " ".join(lines) == title  # wrapped between words, nothing lost
    suptitle = fig._suptitle.get_text().split("\n")
    assert len(suptitle) == report.MAX_TITLE_LINES and suptitle[-1].endswith("…")
    for text in (ax.title, fig._suptitle):
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width, text.get_text()
    # The tight box (what the report's PNG holds) is no wider than the figure.
    assert fig.get_tightbbox(renderer).width <= fig.bbox_inches.width
    # Through report.figure: the picture stays the figure's width (8 in at 100 dpi), so the
    # page does not scale it down to fit an overlong title.
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([0, 1], [0, 1])
    ax.set_title(title)
    png = base64.b64decode(re.search(r"base64,([^']+)'", str(report.figure(fig, alt="x"))).group(1))
    width = int.from_bytes(png[16:20], "big")
    assert 700 <= width <= 820, width


def test_glossary_explains_only_the_terms_a_report_uses():
    from icp_research.reporting.render import HOW_TO_READ, glossary

    terms = dict(
        glossary(
            "Accounts with no CRM churn 1.8x as fast (hazard ratio 1.84, 95% CI "
            "1.45–2.33; n=311; q < 0.001), 34 vs 18 churns per 100 customer-years."
        )
    )
    assert list(terms) == [
        "Interval (95% CI)",
        "n",
        "q-value",
        "Churn per customer-year",
        "Hazard ratio",
        "Lift (2.0x)",
    ]
    assert glossary("Nothing measured here.") == []
    assert "NPS" in dict(glossary("Mean NPS of customers by tier"))
    nb = new_notebook(cells=[new_markdown_cell("# Deals\n\nThe win rate of ICP accounts.")])
    html = render_notebook(nb, meta={"title": "Deals"})
    foot = _main(html).rsplit('class="icp-glossary"', 1)[1]
    assert HOW_TO_READ in foot and "<dt>Win rate</dt>" in foot and "<dt>NPS</dt>" not in foot


def _health_csv(path: Path, quarters: list[str]) -> None:
    rows = []
    for i, quarter in enumerate(quarters):
        for group, rate, n in (("icp", 0.45 + i / 100, 56), ("non_icp", 0.20, 724)):
            rows.append((group, quarter, rate, rate - 0.1, rate + 0.1, n))
        for tier, rate, n in (("Tier 1", 0.45, 106), ("Tier 2", 0.21, 379), ("Tier 3", 0.14, 1)):
            rows.append((tier, quarter, rate, rate - 0.05, rate + 0.05, n))
    frame = pd.DataFrame(rows, columns=["group", "quarter", "value", "ci_low", "ci_high", "n"])
    frame.insert(0, "metric", "win_rate")
    path.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path / "icp_health.csv", index=False)


def test_dashboard_draws_the_icp_against_the_rest_from_the_health_artifact(tmp_path):
    _health_csv(tmp_path / "two", ["2026Q2", "2026Q3"])
    html = render_run_index(manifest(), artifacts_dir=tmp_path / "two")
    main = _main(html)
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', main)
    assert len(images) == 2
    (trend_png, trend_alt), (tier_png, tier_alt) = images
    assert "2026Q2 to 2026Q3" in trend_alt
    assert "ICP accounts 46% (36%–56%, n=56 deals), the rest 20% (10%–30%, n=724 deals)" in (
        trend_alt
    )
    assert "higher one in 2 of 2 quarters" in trend_alt
    assert "Tier 1 45% (40%–50%, n=106 deals); Tier 2 21%" in tier_alt
    assert "Tier 3 14% (9%–19%, n=1 deal)." in tier_alt
    for data in (trend_png, tier_png):
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and 500 <= int.from_bytes(png[16:20], "big") <= 700
    # The pictures come after the ICP statement and before the list of reports.
    assert main.index("icp-statement") < main.index("icp-charts") < main.index("icp-notebooks")
    # One quarter: no trend to draw, only the tiers; no artifacts: no picture at all.
    _health_csv(tmp_path / "one", ["2026Q3"])
    one = _main(render_run_index(manifest(), artifacts_dir=tmp_path / "one"))
    assert one.count("<img ") == 1 and "by fit-score tier in 2026Q3" in one
    assert "<img " not in _main(render_run_index(manifest(), artifacts_dir=tmp_path / "none"))
    assert "<img " not in _main(render_run_index(manifest()))


def test_counts_agree_with_their_noun():
    from icp_research.formatting import fmt_count

    assert fmt_count(1, "customer") == "1 customer"
    assert fmt_count(1.0, "closed deal") == "1 closed deal"
    assert fmt_count(0, "customer") == "0 customers"
    assert fmt_count(1234, "account") == "1,234 accounts"
    assert fmt_count(2, "company", "companies") == "2 companies"


def test_a_reused_exporter_renders_each_page_as_a_new_one_would(ok_html):
    # The exporter (and its compiled templates) is kept per thread; one page's title or
    # failure must not carry over to the next.
    import threading

    from icp_research.reporting import render

    other = render_notebook(
        executed_notebook(company="Other Co", fail=True), meta=meta(title="Another report")
    )
    again = render_notebook(executed_notebook(), meta=meta())
    assert again == ok_html
    assert "Another report" in other and "Another report" not in again
    assert render._exporter()[0] is render._exporter()[0]
    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(render._exporter()[0]))
    thread.start()
    thread.join()
    assert elsewhere[0] is not render._exporter()[0]


def test_the_data_table_names_a_query_whole_and_a_file_by_its_name():
    from icp_research.reporting.render import _inputs

    rows = _inputs(
        [
            {"table": "accounts", "path": "exports/2026/accounts.csv", "rows": 3, "sha256": "ab"},
            {
                "table": "subscriptions",
                "path": "query \"select to_char(d, '%Y/%m')::date as start_date from s\"",
                "source": "postgresql://analyst:***@db/crm",
                "rows": 2,
                "sha256": "cd",
            },
        ]
    )
    assert [r["file"] for r in rows] == [
        "accounts.csv",
        "query \"select to_char(d, '%Y/%m')::date as start_date from s\"",
    ]


def test_an_interval_beside_an_odds_ratio_reads_as_a_ratio():
    """The multivariable table printed "0.54x | 38.9% | 0.74": its ci_low fell between 0 and 1
    and was taken for a share."""
    from icp_research.formatting import table_html

    cells = re.findall(
        r"<td[^>]*>([^<]*)</td>",
        table_html(pd.DataFrame({"odds_ratio": [0.54], "ci_low": [0.389], "ci_high": [0.74]})),
    )
    assert cells == ["0.54x", "0.39x", "0.74x"]
    rates = re.findall(
        r"<td[^>]*>([^<]*)</td>",
        table_html(pd.DataFrame({"rate": [0.6], "ci_low": [0.389], "ci_high": [0.74]})),
    )
    assert rates == ["60.0%", "38.9%", "74.0%"]
