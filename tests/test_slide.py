"""The ICP on one 16:9 slide (artifacts/icp_slide.pptx), read back with python-pptx.

The demo's slide holds the statement verbatim, who fits and who does not in words, every tier
with its win rate and n, the proof numbers of the one-pager with their intervals, the as-of date
and the data behind it; no placeholder is left and no text is smaller than 12 pt. When no ICP is
drawn, the slide says so and why. Rendered pictures are not compared (no office suite in CI):
layout is checked as geometry (every shape inside the slide) and sizes.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from pptx import Presentation
from pptx.util import Pt

from icp_research.analyses import blueprint as bp
from icp_research.analyses import registry
from icp_research.analyses.antipatterns import Condition
from icp_research.analyses.slide import SLIDE_HEIGHT, SLIDE_WIDTH, write_slide
from icp_research.pipeline.cache import files_of

from .studies import make_study
from .test_blueprint import blueprint_tables
from .test_statement_wording import demo  # noqa: F401  (the demo blueprint, built in process)


def _read(path):
    presentation = Presentation(str(path))
    assert len(presentation.slides) == 1
    return presentation, presentation.slides[0]


def _texts(slide) -> dict[str, str]:
    """Every shape's text by shape name (a table: its cells, one row a line, " | " between)."""
    out = {}
    for shape in slide.shapes:
        if shape.has_table:
            out[shape.name] = "\n".join(
                " | ".join(cell.text for cell in row.cells) for row in shape.table.rows
            )
        elif shape.has_text_frame:
            out[shape.name] = shape.text_frame.text
    return out


def _assert_clean(presentation, slide):
    """16:9; no placeholder, no empty text box, no template prompt; body text >= 12 pt; every
    shape inside the slide."""
    assert (presentation.slide_width, presentation.slide_height) == (SLIDE_WIDTH, SLIDE_HEIGHT)
    assert (SLIDE_WIDTH, SLIDE_HEIGHT) == (12_192_000, 6_858_000)
    assert len(slide.placeholders) == 0
    assert not any(shape.is_placeholder for shape in slide.shapes)
    for name, text in _texts(slide).items():
        assert text.strip(), f"{name} has no text"
        assert "[" not in text and "Click to" not in text, (name, text)
    for shape in slide.shapes:
        assert shape.left >= 0 and shape.left + shape.width <= SLIDE_WIDTH, shape.name
        assert shape.top >= 0 and shape.top + shape.height <= SLIDE_HEIGHT, shape.name
        frames = (
            [cell.text_frame for row in shape.table.rows for cell in row.cells]
            if shape.has_table
            else [shape.text_frame]
            if shape.has_text_frame
            else []
        )
        for frame in frames:
            for paragraph in frame.paragraphs:
                for run in paragraph.runs:
                    assert run.font.size is not None and run.font.size >= Pt(12), (
                        shape.name,
                        run.text,
                    )


@pytest.fixture(scope="module")
def demo_slide(demo, tmp_path_factory):  # noqa: F811
    study, result = demo
    path = write_slide(result, tmp_path_factory.mktemp("slide") / "icp_slide.pptx", study=study)
    presentation, slide = _read(path)
    return result, path, presentation, slide


def test_demo_slide_shows_the_icp_on_one_clean_16_9_slide(demo_slide):
    result, _, presentation, slide = demo_slide
    _assert_clean(presentation, slide)
    texts = _texts(slide)
    assert texts["Title"] == result.name == "Mid-size FinTech & SaaS on HubSpot / Salesforce"
    assert texts["Statement"] == result.statement  # verbatim
    assert (
        "Not a fit: companies with no CRM, fewer than 60 employees, or in Education."
        in (texts["Statement"])
    )
    assert f"As of {result.as_of}" in texts["As of"] and result.as_of == "2026-09-30"
    assert "Confidence: high" in texts["As of"]


def test_demo_slide_says_who_fits_and_who_does_not_in_words(demo_slide):
    _, _, _, slide = demo_slide
    texts = _texts(slide)
    fits = texts["Who fits"].splitlines()
    for words in (
        "• Companies with 100–999 employees",
        "• Companies in FinTech or SaaS",
        "• Companies with HubSpot or Salesforce as CRM",
        "• Companies with Referral as referral source",
    ):
        assert words in fits, (words, fits)
    not_fit = texts["Not a fit"].splitlines()
    for words in (
        "× Companies with no CRM",
        "× Companies with fewer than 60 employees",
        "× Companies in Education",
    ):
        assert words in not_fit, (words, not_fit)
    # Prose, never the rules' code form.
    everything = "\n".join(texts.values())
    assert "crm = None" not in everything and "industry in {" not in everything
    assert "NOT A FIT" in everything and "WHO FITS" in everything


def test_demo_slide_shows_each_tier_with_its_win_rate_and_n(demo_slide):
    result, _, _, slide = demo_slide
    rows = _texts(slide)["Fit-score tiers"].splitlines()
    assert rows[0] == "Tier | Score | Win rate | Deals"
    expected = result.tier_table()
    assert len(rows) == len(expected) + 1 == 4
    for line, tier in zip(rows[1:], expected.to_dict("records"), strict=True):
        cells = line.split(" | ")
        assert cells[0] == tier["tier"]
        assert cells[2] == tier["win rate"] and re.fullmatch(r"\d+% \(\d+%–\d+%\)", cells[2])
        assert cells[3] == f"{tier['holdout deals']:,}"
    assert [r.split(" | ")[1] for r in rows[1:]] == ["70–100", "40–69", "0–39"]


def test_demo_slide_shows_the_one_pagers_proof_with_intervals(demo_slide):
    result, _, _, slide = demo_slide
    texts = _texts(slide)
    v = result.validation
    auc = f"{v.auc:.2f} ({v.auc_low:.2f}–{v.auc_high:.2f})"
    assert auc == result.headline["Holdout AUC"]
    assert texts["Proof: Holdout AUC"].splitlines() == [auc, "Holdout AUC"]
    top = v.tables["ratios"].iloc[0]
    tiers = f"{top['ratio']:.1f}x ({top['ci_low']:.1f}–{top['ci_high']:.1f}x)"
    assert texts["Proof: Tier 1 vs Tier 3 win rate"].splitlines()[0] == tiers
    assert tiers.startswith(result.headline["Tier 1 vs Tier 3 win rate"])
    main = next(r for r in result.icp_vs_rest if r["outcome"] == "won")
    icp = f"{main['ratio']:.1f}x ({main['ci_low']:.1f}–{main['ci_high']:.1f}x)"
    assert texts["Proof: ICP vs rest win rate"].splitlines()[0] == icp
    assert icp.startswith(result.headline["ICP vs rest win rate"])


def test_demo_slide_names_the_data_it_rests_on(demo_slide):
    result, _, _, slide = demo_slide
    data = _texts(slide)["Data"]
    assert "Rests on 3,000 accounts (1,490 customers) and 12,890 deals from " in data
    assert f"to {result.as_of}." in data
    outcome = result.outcome
    assert f"{outcome['n_training']:,} deals before {outcome['holdout_from']}" in data
    assert f"confirmed on the {outcome['n_holdout']:,} after" in data
    assert (
        f"checked on the {outcome['n_validation']:,} since {outcome['validation_from']} (the "
        "latest 2 quarters, on which nothing was chosen)" in data
    )


def test_slide_bytes_are_deterministic(demo_slide, tmp_path):
    result, path, _, _ = demo_slide
    again = write_slide(result, tmp_path / "again.pptx", study=None)
    # Without the study the data line says less; either way, the same input, the same bytes.
    assert again.read_bytes() != path.read_bytes()
    assert write_slide(result, tmp_path / "b.pptx").read_bytes() == again.read_bytes()


def _constructed(**kwargs) -> bp.Blueprint:
    rule = bp.Rule(
        "uncertain",
        [Condition("industry", "equals", "Alpha")],
        "industry",
        direction="favour",
        reason="suggestive only",
    )
    fields = {
        "title": "ICP blueprint",
        "as_of": "2026-06-30",
        "project": "<script>alert(1)</script> & Co\x00\x1b",
        "drawn": False,
        "statement": "No ICP can be drawn from this data yet: too few deals (25 accounts).",
        "confidence": {
            "level": "none",
            "reason": "No ICP could be drawn: no characteristic held up in the latest quarters.",
        },
        "uncertain": [rule],
        "headline": {"ICP": "not drawn yet", "Uncertain rules": "1"},
    }
    return bp.Blueprint(**(fields | kwargs))


def test_not_drawn_slide_says_so_and_why(tmp_path):
    rng = np.random.default_rng(3)
    study = make_study(blueprint_tables(rng, n=25), categorical=["industry"], numeric=["employees"])
    result = bp.build_blueprint(study, backtest_quarters=1, n_boot=50)
    assert not result.drawn
    presentation, slide = _read(write_slide(result, tmp_path / "icp_slide.pptx", study=study))
    _assert_clean(presentation, slide)
    texts = _texts(slide)
    assert texts["Title"] == "No ICP drawn yet"
    assert texts["Statement"] == result.statement
    assert texts["Statement"].startswith("No ICP can be drawn from this data yet: ")
    assert result.confidence["reason"] in texts["Who fits"]
    assert texts["Fit-score tiers"] == "No fit score yet."
    assert "Fit-score tiers" not in [s.name for s in slide.shapes if s.has_table]
    assert "Confidence: none" in texts["As of"] and "As of 2026-06-30" in texts["As of"]
    assert "Rests on 25 accounts" in texts["Data"] and "Rules looked for on" in texts["Data"]


def test_not_drawn_slide_lists_what_needs_more_discovery_as_plain_text(tmp_path):
    path = write_slide(_constructed(), tmp_path / "icp_slide.pptx")
    presentation, slide = _read(path)
    _assert_clean(presentation, slide)
    texts = _texts(slide)
    assert "Needs more discovery (hypotheses to test):" in texts["Who fits"]
    assert "? Companies in Alpha" in texts["Who fits"].splitlines()
    assert texts["Proof: Uncertain rules"].splitlines() == ["1", "Uncertain rules"]
    # Text from the data is text: escaped in the XML, control characters left out.
    assert texts["Kicker"] == "IDEAL CUSTOMER PROFILE · <script>alert(1)</script> & Co"
    xml = slide.part.blob.decode("utf-8")
    assert "<script>" not in xml and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in xml


def test_long_lists_and_statements_stay_on_the_slide(tmp_path):
    rules = [
        bp.Rule("exclude", [Condition("industry", "equals", f"Industry number {i}")], "industry")
        for i in range(14)
    ]
    result = _constructed(statement="A very long statement. " * 60, exclude=rules)
    presentation, slide = _read(write_slide(result, tmp_path / "icp_slide.pptx"))
    _assert_clean(presentation, slide)
    texts = _texts(slide)
    assert texts["Statement"] == result.statement.strip()
    shown = [line for line in texts["Not a fit"].splitlines() if line.startswith("× ")]
    assert 0 < len(shown) < 14
    assert texts["Not a fit"].endswith(f"… and {14 - len(shown)} more in icp.json")


def test_save_artifacts_writes_the_declared_slide(tmp_path):
    rng = np.random.default_rng(3)
    study = make_study(blueprint_tables(rng, n=25), categorical=["industry"], numeric=["employees"])
    study.artifacts_dir = tmp_path
    result = bp.build_blueprint(study, backtest_quarters=0, n_boot=20)
    written = bp.save_artifacts(study, result)
    assert registry.ICP_SLIDE.filename == "icp_slide.pptx"
    assert tmp_path / "icp_slide.pptx" in written and tmp_path / "icp_onepager.html" in written
    _read(tmp_path / "icp_slide.pptx")
    blueprint_saves = registry.analysis("blueprint").saves
    assert registry.ICP_SLIDE in blueprint_saves and registry.ICP_ONEPAGER in blueprint_saves
    # A report reused from the cache brings its documents along.
    cached = files_of("05_icp_blueprint")
    assert "artifacts/icp_slide.pptx" in cached and "artifacts/icp_onepager.html" in cached
