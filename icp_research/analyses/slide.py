"""The ICP on one 16:9 slide: ``artifacts/icp_slide.pptx``, for the quarterly deck.

The layout of the one-pager (:func:`icp_research.analyses.blueprint.onepager_html`) on a slide:
the ICP's name, the as-of date and the confidence; the statement; who fits and who is not a fit
(the include and exclude rules in the statement's words,
:meth:`~icp_research.analyses.blueprint.Blueprint.rule_phrases`); the fit-score tiers with their
rate on the latest quarters and n; the proof numbers of the one-pager with their 95% intervals;
and the data the ICP rests on. When no ICP is drawn, the same slide says so and why.

The slide is built on the blank layout from text boxes, shapes and one table, so no placeholder
is left to fill in; text from the data is set as plain text (python-pptx escapes it). Colours
are the report's palette (``templates/report/report.css``). A slide cannot measure its text, so
sizes are chosen from an estimate of how many lines each text needs (body text never below
12 pt), lists are shortened when they would not fit ("... and 2 more in icp.json"), and every
text box also asks PowerPoint to shrink its text on overflow. The file is deterministic: the
same blueprint gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from icp_research.artifacts import write_bytes
from icp_research.formatting import fmt_count
from icp_research.version import __version__

if TYPE_CHECKING:
    from icp_research.analyses.blueprint import Blueprint  # noqa: F401  (type hints only)
    from icp_research.data.study import Study

__all__ = ["SLIDE_HEIGHT", "SLIDE_WIDTH", "data_basis", "slide_presentation", "write_slide"]

#: 16:9 at PowerPoint's default widescreen size (13.333 x 7.5 in), in EMU.
SLIDE_WIDTH = 12_192_000
SLIDE_HEIGHT = 6_858_000

# templates/report/report.css
BLUE = "0173B2"
BLUE_DARK = "014F7C"
BLUE_TINT = "EEF5FA"
RED = "D55E00"
ORANGE_TINT = "FDF4E3"
INK = "1D2733"
MUTED = "5B6674"
RULE = "DBE1E8"
ZEBRA = "F6F8FA"
NAVY = "0F2A3F"
WHITE = "FFFFFF"

# Geometry, in inches.
_WIDTH, _HEIGHT = SLIDE_WIDTH / 914_400, SLIDE_HEIGHT / 914_400
_MARGIN = 0.45
_INNER = _WIDTH - 2 * _MARGIN
_GAP = 0.3
_COLUMNS = (3.95, 3.75, _INNER - 3.95 - 3.75 - 2 * _GAP)  # who fits, not a fit, tiers
_BODY, _SMALL = 14, 12  # the body text and the smallest text on the slide (pt)


@dataclass
class _Para:
    """One paragraph of a text box: runs of ``(text, colour)`` in one size."""

    runs: list
    size: float = _BODY
    bold: bool = False
    before: float = 0  # space before, pt

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.runs)


def _para(text: str, size: float = _BODY, colour: str = INK, **kwargs) -> _Para:
    return _Para([(text, colour)], size, **kwargs)


# Characters XML cannot hold (control characters, lone surrogates, non-characters).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _one_line(value) -> str:
    """Data as one line of plain text: line breaks in a cell are spaces on the slide, and
    characters a slide cannot hold are left out."""
    return " ".join(_NOT_XML.sub("", str(value)).split())


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------------------------
# How much room a text needs (an estimate: a slide cannot measure its text)


def _lines(text: str, width: float, size: float, bold: bool = False) -> int:
    """Lines ``text`` wraps to in a box ``width`` inches wide at ``size`` pt (greedy word wrap,
    an average glyph of 0.47 em, 0.5 em bold: generous for Calibri and its metric twins)."""
    per_line = max(1, int(width * 72 / (size * (0.5 if bold else 0.47))))
    lines, used = 1, 0
    for word in text.split():
        length = len(word)
        while length > per_line:  # a word longer than the line breaks anywhere
            lines += used > 0
            length -= per_line
            used = 0
        if used and used + 1 + length > per_line:
            lines, used = lines + 1, length
        else:
            used += (1 if used else 0) + length
    return lines


def _height(paras: list[_Para], width: float) -> float:
    """Inches the paragraphs need in a box ``width`` inches wide (line spacing 1.2)."""
    return sum(
        (_lines(p.text, width, p.size, p.bold) * p.size * 1.2 + p.before) / 72 for p in paras
    )


def _size_to_fit(text: str, width: float, height: float, sizes, bold: bool = False) -> float:
    """The largest of ``sizes`` at which ``text`` fits; the smallest when none does."""
    for size in sizes:
        if _lines(text, width, size, bold) * size * 1.2 / 72 <= height:
            return size
    return sizes[-1]


# ---------------------------------------------------------------------------------------------
# What the slide says


def data_basis(study: Study) -> dict:
    """What the ICP rests on: ``accounts``, ``customers``, ``deals`` (as of the study date) and
    the period from the first dated record (``first``, YYYY-MM-DD or None) to ``as_of``."""
    from icp_research.data.study import earliest_date

    facts = study.facts
    first, _ = earliest_date(study.tables)
    return {
        "accounts": len(facts),
        "customers": int(facts["is_customer"].fillna(False).astype(bool).sum())
        if "is_customer" in facts
        else 0,
        "deals": len(study.deals),
        "first": first.isoformat() if first is not None else None,
        "as_of": study.as_of.strftime("%Y-%m-%d"),
    }


def _basis_text(blueprint: Blueprint, basis: dict | None) -> str:
    """The as-of date and the data behind the ICP, in one or two sentences."""
    parts = []
    if basis:
        data = (
            f"{fmt_count(basis['accounts'], 'account')} "
            f"({fmt_count(basis['customers'], 'customer')})"
        )
        if basis.get("deals"):
            data += f" and {basis['deals']:,} deals"
        period = f" from {basis['first']} to {basis['as_of']}" if basis.get("first") else ""
        parts.append(f"Rests on {data}{period}.")
    outcome = blueprint.outcome or {}
    unit = outcome.get("unit", "rows")
    if outcome.get("n_training") and outcome.get("holdout_from"):
        scored = blueprint.scorecard is not None
        text = f"{'Rules and score learned' if scored else 'Rules looked for'} on "
        text += f"{int(outcome['n_training']):,} {unit} before {outcome['holdout_from']}"
        if blueprint.include or blueprint.exclude:
            text += " (a rule's evidence: the rate inside it vs elsewhere)"
        if outcome.get("n_holdout"):
            text += f", confirmed on the {int(outcome['n_holdout']):,} after"
        if outcome.get("n_validation") and outcome.get("validation_from"):
            text += (
                f", and checked on the {int(outcome['n_validation']):,} since "
                f"{outcome['validation_from']} (the latest "
                f"{outcome.get('validation_quarters')} quarters, on which nothing was chosen)"
            )
        parts.append(text + ".")
    parts.append(f"icp-research {__version__}.")
    return " ".join(parts)


def _tiers(blueprint: Blueprint) -> list[tuple[str, str, str, str]]:
    """Per tier: name, score range, rate on the latest quarters (95% CI) and n; the one-pager's
    rows, from :meth:`Blueprint.tier_table`."""
    scorecard = blueprint.scorecard
    if scorecard is None:
        return []
    measured = {}
    table = blueprint.tier_table()
    if len(table):
        unit = blueprint.outcome.get("unit", "rows")
        label = blueprint.outcome.get("label", "rate")
        measured = {
            row["tier"]: (row[label], f"{int(row[f'holdout {unit}']):,}")
            for row in table.to_dict("records")
        }
    rows = []
    for i, (name, minimum) in enumerate(scorecard.tiers):
        upper = scorecard.tiers[i - 1][1] - 1 if i else 100
        rate, n = measured.get(name, ("–", "–"))
        rows.append((str(name), f"{int(minimum)}–{int(upper)}", str(rate), n))
    return rows


def _proof(blueprint: Blueprint) -> list[tuple[str, str]]:
    """The one-pager's proof numbers (the blueprint's headline but its "ICP" entry), the
    ratios with the 95% interval of the comparison they come from."""
    label = blueprint.outcome.get("label", "")
    intervals = {}
    validation = blueprint.validation
    ratios = validation.tables.get("ratios") if validation is not None else None
    if ratios is not None and len(ratios):
        top = ratios.iloc[0]
        intervals[f"{top['group_a']} vs {top['group_b']} {label}"] = (top["ci_low"], top["ci_high"])
    main = next(
        (r for r in blueprint.icp_vs_rest if r["outcome"] == blueprint.outcome.get("name")), None
    )
    if main is not None:
        intervals[f"ICP vs rest {label}"] = (main["ci_low"], main["ci_high"])
    proof = []
    for key, value in blueprint.headline.items():
        if key == "ICP":
            continue
        low, high = intervals.get(key, (np.nan, np.nan))
        already = "(" in str(value)  # the headline ratios carry their interval
        if (
            not already
            and low is not None
            and high is not None
            and np.isfinite(low)
            and np.isfinite(high)
        ):
            value = f"{value} ({low:.1f}–{high:.1f}x)"
        proof.append((_one_line(key), _one_line(value)))
    return proof


def _rule_paras(phrases, marker: str, colour: str, size: float, evidence: bool) -> list[_Para]:
    paras = []
    for i, (words, detail) in enumerate(phrases):
        paras.append(
            _Para(
                [(f"{marker} ", colour), (_capital(_one_line(words)), INK)],
                size,
                before=0 if i == 0 else 6,
            )
        )
        if evidence and detail:
            paras.append(_para(_one_line(detail), _SMALL, MUTED))
    return paras


def _first_fit(variants, width: float, height: float) -> int:
    """Index of the first variant (a list of paragraphs) that fits; the last one otherwise."""
    for i, paras in enumerate(variants):
        if _height(paras, width) <= height:
            return i
    return len(variants) - 1


def _list_variants(phrases, marker, colour, lead: list[_Para]) -> list[list[_Para]]:
    """Ways to show a list of rules, most detailed first: with their evidence at 14, 13 and
    12 pt, then without it, then fewer rules and a line saying how many more icp.json has."""
    variants = [
        lead + _rule_paras(phrases, marker, colour, size, evidence)
        for evidence in (True, False)
        for size in (_BODY, 13, _SMALL)
    ]
    for keep in range(len(phrases) - 1, 0, -1):
        rest = len(phrases) - keep
        variants.append(
            lead
            + _rule_paras(phrases[:keep], marker, colour, _SMALL, False)
            + [_para(f"… and {rest} more in icp.json", _SMALL, MUTED, before=6)]
        )
    return variants


def _who_fits(blueprint: Blueprint) -> list[list[_Para]]:
    """Ways to show who fits (see :func:`_list_variants`): the include rules in words, or, when
    no ICP is drawn, why not and the rules that need more discovery."""
    if not blueprint.drawn:
        reason = _one_line((blueprint.confidence or {}).get("reason") or "No include rule yet.")
        lead = [_para(reason, _SMALL, MUTED)]
        uncertain = blueprint.rule_phrases("uncertain")
        if not uncertain:
            return [lead]
        lead.append(_para("Needs more discovery (hypotheses to test):", _SMALL, INK, before=8))
        return _list_variants(uncertain, "?", MUTED, lead)
    phrases = []
    for rule, (words, detail) in zip(
        blueprint.include, blueprint.rule_phrases("include"), strict=True
    ):
        if rule.role != "filter":
            detail = f"how they come to us · {detail}" if detail else "how they come to us"
        phrases.append((words, detail))
    return _list_variants(phrases, "•", BLUE, [])


def _not_a_fit(blueprint: Blueprint) -> list[list[_Para]]:
    """Ways to show who is not a fit: the exclude rules in words."""
    phrases = blueprint.rule_phrases("exclude")
    if not phrases:
        return [[_para("No exclude rule held up.", _SMALL, MUTED)]]
    return _list_variants(phrases, "×", RED, [])


def _rule_columns(blueprint: Blueprint, widths, height: float) -> list[list[_Para]]:
    """Who fits and who does not, each in the most detailed way that fits its column, and both
    in the same way (size, evidence or not) where they can be: the more compact of the two."""
    columns = [_who_fits(blueprint), _not_a_fit(blueprint)]
    chosen = [_first_fit(v, w, height) for v, w in zip(columns, widths, strict=True)]
    uniform = 5  # variants 0-5 show every rule
    common = min(max(chosen), uniform)
    return [
        variants[max(own, min(common, len(variants) - 1))] if len(variants) > 1 else variants[0]
        for variants, own in zip(columns, chosen, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# Drawing


def _inches(x: float):
    from pptx.util import Emu

    return Emu(int(round(x * 914_400)))


def _rgb(hex_colour: str):
    from pptx.dml.color import RGBColor

    return RGBColor.from_string(hex_colour)


def _line(slide, x1, y1, x2, y2, colour: str, width: float, name: str):
    """A straight line ``width`` pt wide (rules and the coloured bars beside a box)."""
    from pptx.enum.shapes import MSO_CONNECTOR
    from pptx.oxml.ns import qn
    from pptx.util import Pt

    line = slide.shapes.add_connector(
        MSO_CONNECTOR.STRAIGHT, _inches(x1), _inches(y1), _inches(x2), _inches(y2)
    )
    line.name = name
    # The line is drawn from its own settings alone: without the theme's style, no viewer adds
    # the theme's shadow (an empty effect list is not enough for every viewer).
    style = line.element.find(qn("p:style"))
    if style is not None:
        line.element.remove(style)
    line.shadow.inherit = False
    line.line.color.rgb = _rgb(colour)
    line.line.width = Pt(width)
    return line


def _text(
    slide,
    x,
    y,
    w,
    h,
    paras: list[_Para],
    *,
    name: str,
    align=None,
    anchor=None,
    fill=None,
    padding=(0, 0, 0, 0),
):
    """A text box holding ``paras``, on ``fill`` when given; ``padding`` (left, top, right,
    bottom, inches) inside it."""
    from pptx.enum.text import MSO_ANCHOR, MSO_AUTO_SIZE
    from pptx.util import Pt

    shape = slide.shapes.add_textbox(_inches(x), _inches(y), _inches(w), _inches(h))
    shape.name = name
    if fill:
        shape.fill.solid()
        shape.fill.fore_color.rgb = _rgb(fill)
    frame = shape.text_frame
    frame.word_wrap = True
    frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE  # PowerPoint shrinks it if it overflows
    left, top, right, bottom = (_inches(v) for v in padding)
    frame.margin_left, frame.margin_top, frame.margin_right, frame.margin_bottom = (
        left,
        top,
        right,
        bottom,
    )
    frame.vertical_anchor = anchor or MSO_ANCHOR.TOP
    for i, para in enumerate(paras):
        paragraph = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
        if align is not None:
            paragraph.alignment = align
        if para.before:
            paragraph.space_before = Pt(para.before)
        for text, colour in para.runs:
            _run(paragraph, text, para.size, colour, para.bold)
    return shape


def _run(paragraph, text: str, size: float, colour: str, bold: bool = False):
    from pptx.util import Pt

    run = paragraph.add_run()
    run.text = text
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.color.rgb = _rgb(colour)
    return run


def _heading(slide, x, y, w, text: str) -> float:
    """A section heading with a rule under it; returns the y below it."""
    _text(slide, x, y, w, 0.28, [_para(text.upper(), 13, NAVY, bold=True)], name=f"{text}: heading")
    _line(slide, x, y + 0.31, x + w, y + 0.31, RULE, 1, f"{text}: rule")
    return y + 0.4


def _tier_table(slide, x, y, w, rows, outcome: dict) -> float:
    """The tiers as a table; returns its height (inches)."""
    from pptx.enum.text import PP_ALIGN

    header = (
        "Tier",
        "Score",
        _capital(outcome.get("label") or "rate"),
        _capital(outcome.get("unit") or "n"),
    )
    widths = (w * 0.24, w * 0.2, w * 0.37, w * 0.19)
    row_height = 0.34
    height = row_height * (len(rows) + 1)
    shape = slide.shapes.add_table(
        len(rows) + 1, 4, _inches(x), _inches(y), _inches(w), _inches(height)
    )
    shape.name = "Fit-score tiers"
    table = shape.table
    table.first_row = True
    table.horz_banding = False
    for j, width in enumerate(widths):
        table.columns[j].width = _inches(width)
    for i in range(len(rows) + 1):
        table.rows[i].height = _inches(row_height)
    for i, values in enumerate([header, *rows]):
        for j, value in enumerate(values):
            cell = table.cell(i, j)
            cell.fill.solid()
            cell.fill.fore_color.rgb = _rgb(NAVY if i == 0 else (ZEBRA if i % 2 == 0 else WHITE))
            cell.margin_left = cell.margin_right = _inches(0.07)
            cell.margin_top = cell.margin_bottom = _inches(0.04)
            frame = cell.text_frame
            frame.word_wrap = True
            paragraph = frame.paragraphs[0]
            paragraph.alignment = PP_ALIGN.RIGHT if j == 3 else PP_ALIGN.LEFT
            _run(paragraph, _one_line(value), _SMALL, WHITE if i == 0 else INK, i == 0)
    return height


def _kpi(slide, x, y, w, h, value: str, label: str):
    """A proof number: the value large, its label under it, on the blue tint."""
    from pptx.enum.text import MSO_ANCHOR

    inner = w - 0.32
    size = _size_to_fit(value, inner, 0.4, (20, 18, 16, 14), bold=True)
    paras = [_para(value, size, BLUE_DARK, bold=True), _para(label, _SMALL, MUTED)]
    _text(
        slide,
        x,
        y,
        w,
        h,
        paras,
        name=f"Proof: {label}",
        anchor=MSO_ANCHOR.MIDDLE,
        fill=BLUE_TINT,
        padding=(0.2, 0.05, 0.12, 0.05),
    )
    _line(slide, x + 0.03, y, x + 0.03, y + h, BLUE, 4.5, f"Proof: {label}: bar")


def _header(slide, name: str, project: str, as_of: str, confidence: str) -> None:
    """Kicker, the ICP's name, the as-of date and confidence; a navy rule under them."""
    from pptx.enum.text import PP_ALIGN

    kicker = "IDEAL CUSTOMER PROFILE" + (f" · {project}" if project else "")
    meta_width = 2.7
    title_width = _INNER - meta_width - 0.2
    _text(slide, _MARGIN, 0.3, title_width, 0.3, [_para(kicker, _SMALL, MUTED)], name="Kicker")
    size = _size_to_fit(name, title_width, 0.62, (28, 26, 24, 22, 20, 18), bold=True)
    title = [_para(name, size, NAVY, bold=True)]
    _text(slide, _MARGIN, 0.58, title_width, 0.62, title, name="Title")
    meta = [
        _para(f"As of {as_of}", _SMALL, MUTED),
        _para(f"Confidence: {confidence}", _SMALL, MUTED),
    ]
    x = _WIDTH - _MARGIN - meta_width
    _text(slide, x, 0.55, meta_width, 0.6, meta, align=PP_ALIGN.RIGHT, name="As of")
    _line(slide, _MARGIN, 1.25, _MARGIN + _INNER, 1.25, NAVY, 2.25, "Header: rule")


def _tier_column(slide, x, y, width, height, blueprint: Blueprint) -> None:
    """The tier table and what its rates are, or why there is none."""
    rows = _tiers(blueprint)
    if not rows:
        text = [_para("No fit score yet.", _SMALL, MUTED)]
        _text(slide, x, y, width, height, text, name="Fit-score tiers")
        return
    outcome = blueprint.outcome or {}
    table_height = _tier_table(slide, x, y, width, rows, outcome)
    label = outcome.get("label") or "rate"
    unit = outcome.get("unit") or "rows"
    note = (
        f"{_capital(label)} of each tier's {unit} in the latest "
        f"{outcome.get('validation_quarters', outcome.get('holdout_quarters'))} quarters "
        f"(95% interval) and how many {unit}."
    )
    top = y + table_height + 0.12
    if top + 0.4 <= y + height:
        _text(
            slide, x, top, width, y + height - top, [_para(note, _SMALL, MUTED)], name="Tiers: note"
        )


def slide_presentation(blueprint: Blueprint, *, basis: dict | None = None):
    """The ICP slide as a python-pptx ``Presentation`` of one 16:9 slide (see the module
    docstring); ``basis`` is :func:`data_basis` of the study (the data line says less
    without it)."""
    from pptx import Presentation
    from pptx.enum.text import MSO_ANCHOR
    from pptx.opc.constants import RELATIONSHIP_TYPE

    presentation = Presentation()
    presentation.slide_width = SLIDE_WIDTH
    presentation.slide_height = SLIDE_HEIGHT
    layouts = presentation.slide_layouts
    blank = next((layout for layout in layouts if layout.name == "Blank"), layouts[6])
    slide = presentation.slides.add_slide(blank)
    for placeholder in list(slide.placeholders):  # the blank layout gives none; be sure
        placeholder.element.getparent().remove(placeholder.element)

    drawn = blueprint.drawn
    name = _one_line(blueprint.name) if drawn and blueprint.name else "No ICP drawn yet"
    confidence = (blueprint.confidence or {}).get("level") or "none"
    as_of = _one_line(blueprint.as_of or (basis or {}).get("as_of") or "")
    project = _one_line(blueprint.project or "")
    _header(slide, name, project, as_of, confidence)

    # The statement on the blue tint (the orange one when no ICP is drawn), as tall as it
    # needs up to a limit; the columns below take the rest.
    statement = _one_line(blueprint.statement or "")
    width = _INNER - 0.45
    size = _size_to_fit(statement, width, 1.05, (18, 17, 16, 15, 14))
    band = max(0.75, min(_height([_para(statement, size)], width) + 0.26, 1.95))
    size = _size_to_fit(statement, width, band - 0.26, (size, 13, _SMALL))
    top = 1.42
    _text(
        slide,
        _MARGIN,
        top,
        _INNER,
        band,
        [_para(statement, size)],
        name="Statement",
        anchor=MSO_ANCHOR.MIDDLE,
        fill=BLUE_TINT if drawn else ORANGE_TINT,
        padding=(0.27, 0.1, 0.18, 0.1),
    )
    _line(
        slide,
        _MARGIN + 0.035,
        top,
        _MARGIN + 0.035,
        top + band,
        BLUE if drawn else RED,
        5.5,
        "Statement: bar",
    )

    # The footer (the data the ICP rests on) and, above it, the proof numbers.
    footer = _basis_text(blueprint, basis)
    footer_height = _height([_para(footer, _SMALL)], _INNER)
    footer_top = _HEIGHT - 0.25 - footer_height
    _text(
        slide,
        _MARGIN,
        footer_top,
        _INNER,
        footer_height,
        [_para(footer, _SMALL, MUTED)],
        name="Data",
    )
    proof = _proof(blueprint)
    proof_top = footer_top - 0.15 - 0.4 - 0.78
    title = "Proof on the latest quarters (95% intervals)" if drawn else "Where it stands"
    y = _heading(slide, _MARGIN, proof_top, _INNER, title)
    if proof:
        width = min(3.2, (_INNER - 0.2 * (len(proof) - 1)) / len(proof))
        for i, (label, value) in enumerate(proof):
            _kpi(slide, _MARGIN + i * (width + 0.2), y, width, 0.78, value, label)
    else:
        text = "No fit score yet, so nothing to check on the latest quarters."
        _text(slide, _MARGIN, y, _INNER, 0.4, [_para(text, _SMALL, MUTED)], name="Proof")

    # Three columns: who fits, who is not a fit, the tiers.
    columns_top = top + band + 0.2
    height = proof_top - 0.15 - columns_top - 0.4
    rules = _rule_columns(blueprint, _COLUMNS[:2], height)
    x = _MARGIN
    for i, (title, width) in enumerate(
        zip(("Who fits", "Not a fit", "Fit-score tiers"), _COLUMNS, strict=True)
    ):
        y = _heading(slide, x, columns_top, width, title)
        if i < 2:
            _text(slide, x, y, width, height, rules[i], name=title)
        else:
            _tier_column(slide, x, y, width, height, blueprint)
        x += width + _GAP

    # Metadata and the package: deterministic, no stale 4:3 thumbnail of the template.
    properties = presentation.core_properties
    properties.title = f"ICP – {name}"
    properties.subject = "Ideal customer profile" + (f" · {project}" if project else "")
    properties.author = properties.last_modified_by = f"icp-research {__version__}"
    properties.comments = "From the ICP blueprint report (artifacts/icp.json)."
    properties.revision = 1
    stamp = _stamp(as_of)
    properties.created = properties.modified = stamp
    package = presentation.part.package
    for rel in list(package.iter_rels()):
        if rel.reltype == RELATIONSHIP_TYPE.THUMBNAIL:
            package.drop_rel(rel.rId)
    return presentation


def _stamp(as_of: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(as_of, "%Y-%m-%d")
    except ValueError:
        return dt.datetime(2000, 1, 1)


def _deterministic(data: bytes) -> bytes:
    """The package again with fixed zip timestamps (python-pptx stamps the time of writing)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


def write_slide(blueprint: Blueprint, path: str | Path, *, study: Study | None = None) -> Path:
    """Write the ICP slide (:func:`slide_presentation`) atomically to ``path`` and return it;
    with ``study``, the slide names the accounts, deals and period the ICP rests on."""
    presentation = slide_presentation(
        blueprint, basis=data_basis(study) if study is not None else None
    )
    buffer = io.BytesIO()
    presentation.save(buffer)
    return write_bytes(_deterministic(buffer.getvalue()), path)
