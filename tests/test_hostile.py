"""Hostile content: data never turns into code, in HTML, CSV, JSON or charts.

Company names, industries, CRM levels, loss and churn reasons, feedback, survey answers and deal
role titles carry script tags, event handlers, spreadsheet formulas, 10,000-character strings,
TeX and non-Latin scripts. The helpers are tested directly; one project full of them is run for
real, twice, which also proves the runs deterministic, with its inputs read-only and carrying
personal columns that must reach no output.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import stat
import struct
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from icp_research.reporting import display as report
from icp_research.reporting.render import sanitize_html

from .conftest import report_text
from .projects import (
    HOSTILE,
    LONG,
    PERSONAL_COLUMNS,
    REP_NAME,
    hostile_tables,
    write_canonical,
)

SCRIPT, IMG, SVG, FORMULA = HOSTILE[0], HOSTILE[1], HOSTILE[2], HOSTILE[3]
FORMULAS = [h for h in HOSTILE if h[:1] in "=+-@"]


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def parse(markup: str) -> _Elements:
    parser = _Elements()
    parser.feed(markup)
    parser.close()
    return parser


def assert_inert(markup: str, where: str = "") -> None:
    """No element or attribute that runs code, whatever the text says."""
    for tag, attrs in parse(markup).elements:
        assert tag not in {"script", "svg", "iframe", "object", "embed", "math"}, (where, tag)
        for name, value in attrs.items():
            assert not name.startswith("on"), (where, tag, name)
            assert "javascript:" not in (value or "").lower(), (where, tag, name)
        if tag == "img" and "src" in attrs:
            assert attrs["src"].startswith("data:image/"), (where, attrs)


def png_size(markup: str) -> list[tuple[int, int]]:
    sizes = []
    for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", markup):
        sizes.append(struct.unpack(">II", base64.b64decode(data[:64])[16:24]))
    return sizes


# ---------------------------------------------------------------------------------------------
# The helpers, directly


def test_tables_escape_cut_and_wrap_values_from_data():
    frame = pd.DataFrame({"segment": [*HOSTILE], "accounts": range(len(HOSTILE))})
    markup = report.table_html(frame, caption=SCRIPT)
    assert_inert(markup)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup  # caption and cell
    assert "&quot;&gt;&lt;svg onload=alert(1)&gt;" in markup
    assert "شركة الأمل" in markup and "中文公司" in markup and "🚀 émoji ünïcode" in markup
    # The 10,000-character value is cut for display and allowed to wrap.
    cell = next(c for c in re.findall(r"<td[^>]*>[^<]*</td>", markup) if "LLLL" in c)
    assert cell.startswith("<td class='icp-long'>") and len(cell) < 400 and "…" in cell
    assert parse(markup).text.count(LONG) == 0


def test_prose_helpers_escape_everything():
    markup = "".join(
        str(block)
        for block in (
            report.summary(HOSTILE, SCRIPT, caveats=[IMG]),
            report.callout(SVG, "warning"),
            report.not_enough_evidence(SCRIPT, IMG),
            report.bullets(HOSTILE),
            report.kpis({SCRIPT: SVG}),
        )
    )
    assert_inert(markup)
    text = "".join(parse(markup).text)
    for value in HOSTILE:
        if value != LONG:
            assert value in text  # shown as text, not mangled
    # A 10,000-character run is cut in prose (a sentence stays readable).
    assert LONG not in text and "L" * (report.MAX_WORD_CHARS - 1) + "…" in text


def test_sanitizer_drops_the_attacks():
    markup = f"<p>{SCRIPT}{IMG}{SVG}<a href='javascript:alert(1)'>x</a></p>"
    cleaned = sanitize_html(markup)
    assert_inert(cleaned)
    assert "alert(1)" not in cleaned
    assert sanitize_html("<img src='data:text/html;base64,PHNjcmlwdD4='>") == "<img>"


def test_charts_draw_hostile_labels_as_short_plain_text():
    report.set_style()
    fig, ax = plt.subplots()
    ax.barh(HOSTILE, range(len(HOSTILE)))
    ax.set_title(HOSTILE[-1])  # "Price $\frac{ 50$ off" would be a TeX error
    ax.legend([LONG])
    markup = str(report.figure(ax, alt=f"Lift by industry {SCRIPT}"))
    assert_inert(markup)
    assert "alt='Lift by industry &lt;script&gt;alert(1)&lt;/script&gt;'" in markup
    ((width, height),) = png_size(markup)
    assert width < 1500 and height < 1500  # the 10,000 L's are cut to a label


def test_csv_writer_neutralises_formulas_everywhere(tmp_path):
    frame = pd.DataFrame(
        {
            "level": pd.Categorical(FORMULAS + ["-12.5"]),
            FORMULA: ["plain"] * (len(FORMULAS) + 1),
            "text": pd.array(FORMULAS + [None], dtype="string"),
        }
    )
    path = report.write_csv(frame, tmp_path / "levels.csv")
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0] == ["level", "'" + FORMULA, "text"]
    assert [r[0] for r in rows[1:]] == ["'" + f for f in FORMULAS] + ["-12.5"]
    assert [r[2] for r in rows[1:]] == ["'" + f for f in FORMULAS] + [""]


def test_json_writer_keeps_text_and_writes_valid_json(tmp_path):
    path = report.write_json({"levels": HOSTILE, "rate": float("nan")}, tmp_path / "x.json")
    data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constants)
    assert data == {"levels": HOSTILE, "rate": None}


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


# ---------------------------------------------------------------------------------------------
# A real run of a hostile project, twice, from read-only inputs


def _snapshot(folder: Path) -> dict:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory):
    """Two runs of the same hostile project (inputs chmod read-only), and the input folder
    before and after."""
    from icp_research.pipeline.runner import Progress, run_suite

    base = tmp_path_factory.mktemp("hostile")
    config = write_canonical(
        base / "project", hostile_tables(), name="<script>alert(1)</script> Co", as_of=None
    )
    project = config.parent
    before = _snapshot(project)
    for path in project.iterdir():
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    project.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        runs = [
            run_suite(config=config, out=base / folder / "hostile", progress=Progress(True))
            for folder in ("first", "second")
        ]
    finally:
        project.chmod(0o755)
        for path in project.iterdir():
            path.chmod(0o644)
    return {"runs": runs, "before": before, "after": _snapshot(project), "project": project}


def _files(run, pattern: str) -> list[Path]:
    return sorted(p for p in run.out_dir.rglob(pattern) if p.is_file())


@pytest.mark.e2e
def test_every_report_runs_from_read_only_inputs_left_untouched(hostile_runs):
    for run in hostile_runs["runs"]:
        statuses = {o.name: o.status for o in run.outcomes}
        assert set(statuses.values()) == {"ok"}, statuses
    # Same files, bytes and modification times: nothing was written, renamed or added. (As
    # root the modes are not enforced, so this comparison is what proves it there.)
    assert hostile_runs["after"] == hostile_runs["before"]


@pytest.mark.e2e
def test_no_markup_from_data_survives_in_any_page(hostile_runs):
    run = hostile_runs["runs"][0]
    pages = [*_files(run, "*.html"), run.out_dir.parent / "index.html"]
    assert len(pages) >= 8
    for page in pages:
        assert_inert(page.read_text(encoding="utf-8"), page.name)
    shown = {p.stem: report_text(run, p.stem) for p in _files(run, "[0-9][0-9]_*.html")}
    everything = " ".join(shown.values())
    # The data is there, as text: tags, formulas and every script, unmangled.
    for value in (SCRIPT, IMG, SVG, FORMULA, "شركة الأمل", "中文公司", "🚀 émoji ünïcode"):
        assert value in everything, value
    assert SCRIPT in shown["02_churn_analysis"] or SCRIPT in shown["03_lost_deal_analysis"]
    index = (run.out_dir / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Co" in index


@pytest.mark.e2e
def test_long_values_do_not_blow_up_charts_or_tables(hostile_runs):
    run = hostile_runs["runs"][0]
    for page in _files(run, "[0-9][0-9]_*.html"):
        markup = page.read_text(encoding="utf-8")
        for width, height in png_size(markup):
            assert width < 2500 and height < 2500, (page.name, width, height)
        assert LONG not in markup, page.name


@pytest.mark.e2e
def test_csv_artifacts_are_spreadsheet_safe_and_json_is_valid(hostile_runs):
    run = hostile_runs["runs"][0]
    neutralised = 0
    for path in _files(run, "*.csv"):
        for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"))):
            for cell in row:
                if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    float(cell)  # only plain numbers may start like a formula
                neutralised += cell.startswith("'" + FORMULA)
    assert neutralised > 0  # the formula is in the artifacts, prefixed
    for path in _files(run, "*.json"):
        json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constants)


@pytest.mark.e2e
def test_personal_columns_and_rep_names_reach_no_output(hostile_runs):
    run = hostile_runs["runs"][0]
    for path in _files(run, "*"):
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            assert not set(PERSONAL_COLUMNS) & set(frame.columns), path.name
            text = frame.astype(str).to_csv()
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
            # The snapshot keeps the mapped deal owner for analysts; no report or table shows it.
            assert REP_NAME not in text, path.name
        for secret in PERSONAL_COLUMNS.values():
            assert secret not in text, (path.name, secret)
    problems = json.loads((run.out_dir / "artifacts" / "data" / "dataset.json").read_text())
    dropped = [p for p in problems["problems"] if "personal-data columns dropped" in p["message"]]
    # Their names are listed (so the analyst knows); their values are nowhere.
    assert dropped and all(f'"{c}"' in dropped[0]["message"] for c in PERSONAL_COLUMNS)


@pytest.mark.e2e
def test_two_runs_on_the_same_inputs_are_identical(hostile_runs):
    first, second = (run.out_dir for run in hostile_runs["runs"])
    artifacts = sorted(
        p.relative_to(first) for p in (first / "artifacts").rglob("*") if p.is_file()
    )
    assert artifacts == sorted(
        p.relative_to(second) for p in (second / "artifacts").rglob("*") if p.is_file()
    )
    for relative in artifacts:
        if relative.name == "manifest.json":
            continue
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    assert _manifest(first) == _manifest(second)
    for page in sorted(p.name for p in first.glob("*.html")):
        assert _page(first / page) == _page(second / page), page


def _manifest(run: Path) -> dict:
    manifest = json.loads((run / "artifacts" / "manifest.json").read_text(encoding="utf-8"))
    for key in ("started_at", "finished_at"):
        manifest.pop(key)
    for notebook in manifest["notebooks"]:
        notebook.pop("seconds")
    return manifest


def _page(path: Path) -> str:
    """A rendered page without the moments it was made and how long each report took."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<when>", text)
    return re.sub(r"\d+(?:\.\d+)? s\b|\d+ min \d\d s", "<seconds>", text)
