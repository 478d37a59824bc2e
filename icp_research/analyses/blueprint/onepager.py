"""The one-pager: the ICP on one printable page (``artifacts/icp_onepager.html``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from icp_research.analyses.blueprint.result import Blueprint
from icp_research.analyses.blueprint.rules import short_evidence
from icp_research.analyses.blueprint.text import OUTCOME_WORDS, pct, rate_ci_text
from icp_research.version import __version__


def onepager_html(blueprint: Blueprint) -> str:
    """The ICP on one printable page (A4 / Letter landscape): name, statement,
    characteristics, include and exclude rules, tiers and the key proof numbers.

    Self-contained: inline styles, no script, nothing fetched; every value is escaped.
    """
    import jinja2
    import markupsafe

    from icp_research.bundled import templates_dir

    folder = templates_dir() / "report"
    css = (folder / "onepager.css").read_text(encoding="utf-8")
    if "</" in css:
        raise ValueError("onepager.css must not contain '</'")
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    tiers = []
    if blueprint.scorecard is not None:
        measured = {}
        if blueprint.validation is not None:
            measured = {r["tier"]: r for r in blueprint.validation.summary.to_dict("records")}
        names = [n for n, _ in blueprint.scorecard.tiers]
        for i, (name, minimum) in enumerate(blueprint.scorecard.tiers):
            upper = blueprint.scorecard.tiers[i - 1][1] - 1 if i else 100
            row = measured.get(name, {})
            tiers.append(
                {
                    "name": name,
                    "range": f"{int(minimum)}–{int(upper)}",
                    "rate": rate_ci_text(
                        row.get("rate", np.nan),
                        row.get("ci_low", np.nan),
                        row.get("ci_high", np.nan),
                    ),
                    "n": f"{int(row['n']):,}" if row else "–",
                    "last": i == len(names) - 1,
                }
            )
    proof = [(label, value) for label, value in blueprint.headline.items() if label != "ICP"]
    main = next(
        (r for r in blueprint.icp_vs_rest if r["outcome"] == blueprint.outcome.get("name")), None
    )
    context = {
        "css": markupsafe.Markup(css),
        "project": blueprint.project,
        "as_of": blueprint.as_of,
        "name": blueprint.name or "No ICP drawn yet",
        "statement": blueprint.statement,
        "drawn": blueprint.drawn,
        "confidence": {"level": "none", "reason": ""} | dict(blueprint.confidence),
        "characteristics": [
            {
                "attribute": _label(c["attribute"], blueprint),
                "role": "who they are" if c["role"] == "filter" else "how they come",
                "outcomes": ", ".join(OUTCOME_WORDS.get(o, (o,))[0] for o in c["outcomes"]),
            }
            for c in blueprint.characteristics
        ],
        # Rules in words for people ("Companies with no CRM"); icp.json keeps the code form.
        "include": [(_in_words(r, blueprint), short_evidence(r)) for r in blueprint.include],
        "exclude": [(_in_words(r, blueprint), short_evidence(r)) for r in blueprint.exclude],
        "uncertain": [
            f"{_in_words(r, blueprint)} ({'favour' if r.direction == 'favour' else 'avoid'}?)"
            for r in blueprint.uncertain[:4]
        ],
        "tiers": tiers,
        "outcome_label": blueprint.outcome.get("label", ""),
        "proof": proof,
        "icp_line": (
            f"ICP {pct(main['rate_icp'])} vs rest {pct(main['rate_rest'])} "
            f"{blueprint.outcome.get('label', '')} in the latest "
            f"{blueprint.outcome.get('validation_quarters')} quarters"
            if main is not None and main["n_icp"]
            else ""
        ),
        "generator": f"icp-research {__version__}",
    }
    return environment.get_template("onepager.html.j2").render(**context)


def write_onepager(blueprint: Blueprint, path: str | Path) -> Path:
    """Write :func:`onepager_html` atomically to ``path`` and return it."""
    from icp_research.artifacts import write_text

    return write_text(onepager_html(blueprint), path)


def _in_words(rule, blueprint) -> str:
    """ "Companies with 100–999 employees", "Companies in FinTech or SaaS"."""
    from icp_research.analyses.blueprint.statement import rule_words

    preposition, words = rule_words(rule, getattr(blueprint, "labels", None))
    return f"Companies {preposition} {words}"


def _label(attribute: str, blueprint) -> str:
    """ "referral source", "CRM": the column's label for people."""
    from icp_research.analyses.blueprint.statement import column_label

    return column_label(attribute, getattr(blueprint, "labels", None))
