"""The result: :class:`Blueprint`, whose :meth:`Blueprint.to_json` is ``artifacts/icp.json``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from icp_research.analyses.blueprint.evidence import Evidence, holdout_verdict, rates_text
from icp_research.analyses.blueprint.rules import main_evidence, short_evidence
from icp_research.analyses.blueprint.statement import not_a_fit
from icp_research.analyses.blueprint.text import (
    OUTCOME_WORDS,
    lift_text,
    pct,
    per100,
    plain,
    plain_records,
    rate_ci_text,
)
from icp_research.formatting import fmt_money
from icp_research.result import Result
from icp_research.scoring.schema import ICP_FORMAT
from icp_research.version import __version__

FORMAT = ICP_FORMAT


@dataclass(repr=False)
class Blueprint(Result):
    """The ICP blueprint (see the package docstring); :meth:`to_json` is ``icp.json``.

    ``summary`` is the rules table (every include, exclude and uncertain rule with its main
    evidence); ``findings`` open the report; ``tables`` hold ``characteristics``, ``tiers``,
    ``icp_vs_rest``, ``backtest``, ``segments``. The fit score is ``scorecard`` (None when none
    could be fitted), its holdout proof ``validation`` (and ``retention`` for 12-month
    retention by tier).
    """

    name: str | None = None
    statement: str = ""
    statement_drafted: str = ""
    statement_source: str = "drafted"
    drawn: bool = False
    confidence: dict = field(default_factory=dict)
    outcome: dict = field(default_factory=dict)
    characteristics: list = field(default_factory=list)
    include: list = field(default_factory=list)
    exclude: list = field(default_factory=list)
    uncertain: list = field(default_factory=list)
    rule_notes: list = field(default_factory=list)
    attributes: dict = field(default_factory=dict)
    scorecard: object = None
    validation: object = None
    calibration: object = None  # FitScoreCalibration: the win probability (None: no fit score)
    # A fit score fitted and then withheld: it ranked the validation quarters backwards.
    withheld_scorecard: object = None
    retention: object = None
    icp_vs_rest: list = field(default_factory=list)
    backtest: pd.DataFrame = field(default_factory=pd.DataFrame)
    backtest_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    segments: dict = field(default_factory=dict)
    pmf: Result | None = None
    headline: dict = field(default_factory=dict)
    need: dict | None = None
    labels: object = None  # how the prose names columns and values ([labels])
    icp_share: float = np.nan
    upstream_sources: dict = field(default_factory=dict)
    as_of: str = ""
    project: str = ""

    def __repr__(self) -> str:
        return (
            f"<Blueprint: {self.name or 'no ICP drawn'}; {len(self.include)} include, "
            f"{len(self.exclude)} exclude, {len(self.uncertain)} uncertain rules; "
            f"{'a fit score' if self.scorecard is not None else 'no fit score'}>"
        )

    # -- icp.json ----------------------------------------------------------------------------

    def periods_text(self) -> str:
        """The three periods in one sentence: what the ICP was discovered, confirmed and
        validated on."""
        periods = self.params.get("periods") or {}
        if not periods:
            return ""

        def span(name: str) -> str:
            part = periods.get(name) or {}
            return f"{part.get('start')} to {part.get('end')}"

        return (
            f"Three periods: characteristics and rules were discovered on "
            f"{span('discovered_on')} and confirmed on {span('confirmed_on')} (the confirmation "
            f"quarters); the ICP and the fit score are then validated on {span('validated_on')} "
            "(the latest quarters), on which nothing was chosen."
        )

    def rules_spec(self) -> dict:
        """The ``rules`` and ``attributes`` entries of icp.json (what scorers need)."""
        return {
            "rules": {
                "include": [r.to_dict() for r in self.include],
                "exclude": [r.to_dict() for r in self.exclude],
                "uncertain": [r.to_dict() for r in self.uncertain],
                "notes": list(self.rule_notes),
            },
            "attributes": self.attributes,
        }

    def to_json(self) -> dict:
        """``artifacts/icp.json`` (see the package docstring for every field)."""
        spec = self.rules_spec()
        if self.scorecard is not None:
            card = self.scorecard.to_dict()
        else:
            card = {"scorecard": None, "tiers": self.params.get("tiers_json", [])}
        validation = {}
        if self.validation is not None:
            validation = self.validation.to_dict()
            validation["calibration"] = plain_records(self.validation.tables.get("calibration"))
        if self.scorecard is not None or self.icp_vs_rest:
            validation["icp_vs_rest"] = [
                {k: plain(v) for k, v in row.items()} for row in self.icp_vs_rest
            ]
            validation["retention_by_tier"] = (
                plain_records(self.retention.summary) if self.retention is not None else []
            )
            validation["backtest"] = plain_records(self.backtest)
            validation["backtest_summary"] = plain_records(self.backtest_summary)
        periods = self.params.get("periods") or {}
        for name in ("selected_on", "validated_on", "discovered_on", "confirmed_on"):
            if name in periods:
                validation[name] = dict(periods[name])
        segments = self.segments or {}
        return {
            "format": FORMAT,
            "kit_version": __version__,
            "project": self.project,
            "as_of": self.as_of,
            "name": self.name,
            "statement": self.statement,
            "statement_drafted": self.statement_drafted,
            "statement_source": self.statement_source,
            "drawn": self.drawn,
            "confidence": dict(self.confidence),
            "outcome": {k: plain(v) for k, v in self.outcome.items()},
            "characteristics": [
                {
                    k: v
                    for k, v in item.items()
                    if k
                    in (
                        "rank",
                        "attribute",
                        "kind",
                        "role",
                        "favour",
                        "avoid",
                        "trade_offs",
                        "outcomes",
                    )
                }
                | {"rule": item.get("rule"), "evidence": item.get("evidence", "")}
                for item in self.characteristics
            ],
            "rules": spec["rules"],
            "attributes": spec["attributes"],
            "scorecard": card["scorecard"],
            "tiers": card["tiers"],
            "calibration": self.calibration.to_json() if self.calibration is not None else None,
            "validation": validation,
            "segments": {
                "verdict": segments.get("verdict", ""),
                "drawn": bool(segments.get("drawn", False)),
                "table": _segment_records(segments.get("table")),
                "icps": segments.get("icps", {}),
            },
            "pmf": self.pmf.params.get("json", {}) if self.pmf is not None else {},
            "headline": dict(self.headline),
            "caveats": list(self.caveats),
        }

    def score(self, leads: pd.DataFrame) -> pd.DataFrame:
        """Score leads the way ``icp-research score`` does (:func:`scoring.score_leads`)."""
        from icp_research.scoring.model import score_leads

        return score_leads(self.to_json(), leads)

    # -- display tables ----------------------------------------------------------------------

    def characteristics_table(self) -> pd.DataFrame:
        """One row per defining characteristic: its role, rule and evidence."""
        return pd.DataFrame(
            [
                {
                    "rank": item["rank"],
                    "characteristic": item["attribute"],
                    "role": "who the company is"
                    if item["role"] == "filter"
                    else "how it came to us",
                    "include rule": item.get("rule") or "–",
                    "avoid": ", ".join(map(str, item["avoid"])) or "–",
                    "trade-offs": "; ".join(
                        f"{t['level']}: {t['text']}" for t in item.get("trade_offs", [])
                    )
                    or "–",
                    "held up for": ", ".join(item["outcomes"]),
                    "evidence": item.get("evidence", ""),
                }
                for item in self.characteristics
            ]
        )

    def rules_table(self, kind: str) -> pd.DataFrame:
        """Display table of one kind of rule: the rule, its evidence in words, and the numbers
        of its main outcome (n, rate in vs out, lift with CI, q, replicated)."""
        rules = {"include": self.include, "exclude": self.exclude, "uncertain": self.uncertain}[
            kind
        ]
        rows = []
        for rule in rules:
            main = main_evidence(rule)
            row = {"rule": rule.text}
            if kind == "include":
                row["role"] = "filter" if rule.role == "filter" else "signal"
            if kind == "uncertain":
                row["direction"] = rule.direction
                row["why uncertain"] = rule.reason
            if main is not None:
                t = main.training
                row.update(
                    {
                        "outcome": main.sample.outcome,
                        "n": t["n"],
                        "rate in vs out": rates_text(main.sample, t),
                        "lift (95% CI)": lift_text(t),
                        "q_value": main.q_value,
                        "confirmation quarters": _holdout_text(main),
                    }
                )
            row["accounts"] = pct(rule.share_of_accounts)
            row["all evidence"] = " ".join(e.sentence() for e in rule.evidence)
            rows.append(row)
        return pd.DataFrame(rows)

    def tier_table(self) -> pd.DataFrame:
        """Per tier: cut-off, holdout rows, outcome rate (CI), value of won rows and, when
        measured, 12-month retention (CI)."""
        if self.validation is None:
            return pd.DataFrame()
        summary = self.validation.summary
        unit = self.outcome.get("unit", "rows")
        label = self.outcome.get("label", "rate")
        rows = []
        retention = self.retention.summary if self.retention is not None else None
        for i, row in summary.iterrows():
            out = {
                "tier": row["tier"],
                "min score": int(row["min_score"]),
                f"holdout {unit}": int(row["n"]),
                label: rate_ci_text(row["rate"], row["ci_low"], row["ci_high"]),
            }
            if "value_mean" in summary.columns:
                out["mean value won"] = (
                    f"{fmt_money(row['value_mean'])} ({fmt_money(row['value_ci_low'])}–"
                    f"{fmt_money(row['value_ci_high'])})"
                    if np.isfinite(row["value_ci_low"])
                    else fmt_money(row["value_mean"])
                )
                out["median value won"] = fmt_money(row["value_median"])
            if retention is not None and i < len(retention):
                r = retention.iloc[i]
                out["12-month retention"] = rate_ci_text(r["rate"], r["ci_low"], r["ci_high"])
                out["customers"] = int(r["n"])
            rows.append(out)
        return pd.DataFrame(rows)

    def icp_vs_rest_table(self) -> pd.DataFrame:
        """ICP accounts (every include filter, no exclude rule) vs the rest on the holdout."""
        rows = []
        for row in self.icp_vs_rest:
            words = OUTCOME_WORDS.get(row["outcome"], (row["outcome"],))[0]
            churn = row["rate_unit"] != "share"

            def rate(value, churn=churn):
                return f"{per100(value)} per 100 customer-years" if churn else pct(value)

            rows.append(
                {
                    "outcome": words,
                    "ICP": f"{rate(row['rate_icp'])} (n={row['n_icp']:,})",
                    "the rest": f"{rate(row['rate_rest'])} (n={row['n_rest']:,})",
                    "ratio (95% CI)": lift_text(
                        {"lift": row["ratio"], "ci_low": row["ci_low"], "ci_high": row["ci_high"]}
                    ),
                    "p_value": row["p_value"],
                }
            )
        return pd.DataFrame(rows)

    def backtest_table(self) -> pd.DataFrame:
        """Per quarter: accounts scored at its start, how many converted, AUC and Tier 1 vs
        the last tier."""
        if self.backtest_summary.empty:
            return pd.DataFrame()
        rows = []
        rates = self.backtest.pivot_table(
            index="quarter", columns="tier", values="rate", sort=False
        )
        for row in self.backtest_summary.itertuples():
            out = {
                "quarter": row.quarter,
                "score chosen from": getattr(row, "attributes", "") or "–",
                "accounts scored": row.n,
                row.event: row.events,
                "AUC (95% CI)": f"{row.auc:.2f} ({row.auc_low:.2f}–{row.auc_high:.2f})"
                if np.isfinite(row.auc)
                else "–",
            }
            for tier in rates.columns:
                out[f"{tier} rate"] = pct(rates.loc[row.quarter, tier])
            out[f"{rates.columns[0]} vs {rates.columns[-1]}"] = _lift_short(
                {
                    "lift": row.top_vs_bottom,
                    "ci_low": row.top_vs_bottom_low,
                    "ci_high": row.top_vs_bottom_high,
                }
            )
            rows.append(out)
        return pd.DataFrame(rows)

    def segments_table(self) -> pd.DataFrame:
        """Per size segment: accounts, customers, outcome rate and each include rule's lift."""
        table = (self.segments or {}).get("table")
        if table is None or table.empty:
            return pd.DataFrame()
        rows = []
        for record in table.to_dict("records"):
            out = {
                "segment": record["segment"],
                "accounts": record["accounts"],
                "customers": record["customers"],
                self.outcome.get("unit", "rows"): record["rows"],
                self.outcome.get("label", "rate"): pct(record["rate"]),
            }
            for key, value in record.items():
                if isinstance(value, dict):
                    out[f"lift: {key}"] = _lift_short(value) if value.get("n") else "–"
            rows.append(out)
        return pd.DataFrame(rows)

    def rule_phrases(self, kind: str) -> list[tuple[str, str]]:
        """Each ``include``, ``exclude`` or ``uncertain`` rule in the statement's words with its
        main evidence in short, e.g. ``("companies in Education", "win rate 15% vs 22%")`` (for
        the slide and other summaries; icp.json keeps the rules' code form)."""
        rules = {"include": self.include, "exclude": self.exclude, "uncertain": self.uncertain}
        return [(not_a_fit([r], self.labels), short_evidence(r)) for r in rules[kind]]


def _segment_records(frame) -> list[dict]:
    if frame is None or len(frame) == 0:
        return []
    out = []
    for record in frame.to_dict("records"):
        item = {}
        for key, value in record.items():
            if isinstance(value, dict):
                item.setdefault("lifts", {})[key] = {k: plain(v) for k, v in value.items()}
            else:
                item[key] = value if isinstance(value, str) else plain(value)
        out.append(item)
    return out


def _holdout_text(evidence: Evidence) -> str:
    h = evidence.holdout
    if h is None or h.get("n", 0) == 0:
        return "no rows to check"
    verdict = holdout_verdict(evidence)
    if evidence.held_up and not evidence.replicated:
        verdict = "same direction; held up against all other rows upstream"
    return f"{rates_text(evidence.sample, h)} ({lift_text(h)}): {verdict}"


def _lift_short(values: dict) -> str:
    """'1.94x (1.70–2.22)'."""
    lift = values.get("lift")
    if lift is None or not np.isfinite(lift):
        return "–"
    low, high = values.get("ci_low"), values.get("ci_high")
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{lift:.2f}x"
    return f"{lift:.2f}x ({low:.2f}–{high:.2f})"
