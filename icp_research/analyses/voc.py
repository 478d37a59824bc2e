"""Voice of the customer: feedback themes, survey answers and buying-committee signals.

Three optional inputs, each turned into evidence the ICP rules can use:

- **Feedback text** (the ``feedback`` table: churn feedback, loss notes, call notes; plus
  ``churn_events.feedback`` where it is not already in ``feedback``) is coded into themes by a
  transparent codebook (:mod:`icp_research.methods.codebook`). Theme frequencies come overall, by
  source and by segment with Wilson intervals; themes are then tested like any other predictor
  against churn, best customers, won deals and "no decision" losses.
- **Survey / interview answers** (the ``survey`` table) become account attributes
  ``survey_<question>`` (see :func:`icp_research.data.facts.survey_attributes`) that every analysis
  sees as behavioural (post-sale) signals; here their answers are compared between best
  customers and the rest, and between churned and retained customers.
- **Buying committees** (the ``deal_roles`` table) give per-deal signals: people on the deal,
  economic buyer and champion involved, the champion's function and seniority (derived from
  department and title by keyword rules; raw titles never reach a report), related to the
  new-business win rate (deals clustered by account) and to the sales cycle (open deals
  censored).

Every rate carries its n and a 95% interval, every family of tests is corrected with
Benjamini-Hochberg, and a part whose table is missing says so instead of failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.analyses import registry
from icp_research.data.facts import survey_columns
from icp_research.data.study import Study
from icp_research.formatting import (
    error_bars,
    fmt_count,
    fmt_p,
    fmt_pct,
    fmt_rate_ci,
    fmt_ratio,
    fmt_ratio_ci,
)
from icp_research.methods.binning import MISSING, OTHER, pool_rare_levels
from icp_research.methods.codebook import Codebook, normalise_text, redact, theme_label
from icp_research.methods.stats import (
    adjust_pvalues,
    clustered_rate_ci,
    clustered_ratio_test,
    proportion_ci,
    two_proportion_pvalue,
)
from icp_research.result import Result, View

UNCODED = "(uncoded)"
ALL = "all"
# Notes written because of the outcome (a churn, a lost deal) exist for one side only: they
# explain the outcome but cannot separate it from its opposite.
OUTCOME_SOURCES = {"churn", "loss"}

FEEDBACK_THEME_COLUMNS = [
    "theme", "label", "source", "segment_by", "segment", "notes", "mentions", "share",
    "ci_low", "ci_high", "accounts", "accounts_mentioning", "account_share",
    "account_share_rest", "p_value", "q_value", "significant",
]  # fmt: skip
THEME_TEST_COLUMNS = [
    "outcome", "outcome_label", "theme", "label", "unit", "sources", "n", "n_with",
    "n_without", "rate_with", "rate_without", "effect", "ci_low", "ci_high",
    "theme_share_outcome", "theme_share_rest", "p_value", "q_value", "significant", "test",
]  # fmt: skip
SURVEY_ANSWER_COLUMNS = [
    "outcome", "question", "answer", "column", "respondents", "n", "answer_share",
    "share_ci_low", "share_ci_high", "rate_with", "rate_without", "effect", "ci_low",
    "ci_high", "answer_share_outcome", "answer_share_rest", "p_value", "q_value",
    "significant", "test",
]  # fmt: skip
BUYING_COMMITTEE_COLUMNS = [
    "signal", "label", "level", "deals", "accounts", "won", "win_rate", "win_rate_ci_low",
    "win_rate_ci_high", "win_rate_rest", "effect", "ci_low", "ci_high", "p_value", "q_value",
    "significant", "test", "cycle_deals", "open_deals", "median_cycle_days", "cycle_ci_low",
    "cycle_ci_high", "cycle_p_value", "cycle_q_value",
]  # fmt: skip

SHORT_OUTCOME_LABELS = {
    "churned": "churned",
    "best_customer": "best customer",
    "won": "won deal",
    "no_decision": "no-decision loss",
}
OUTCOME_LABELS = {
    "churned": "churned (vs retained customers)",
    "best_customer": "best customer (vs other customers)",
    "won": "won (vs lost new-business deals)",
    "no_decision": "no decision (vs other lost deals)",
}


@dataclass(repr=False)
class VoiceOfCustomer(Result):
    """The three parts of the voice of the customer, and what the ICP rules should take.

    ``themes``, ``survey`` and ``committee`` are :class:`Result` objects (``None`` when their
    table is absent); ``findings`` and ``caveats`` collect theirs, ``takeaways`` are the
    plain-language lessons for the ICP rules. :meth:`artifacts` gives the four CSV tables.
    """

    themes: Result | None = None
    survey: Result | None = None
    committee: Result | None = None
    takeaways: list[str] = field(default_factory=list)
    codebook: Codebook | None = None
    # part ("themes", "survey", "committee") -> why it could not be computed
    missing: dict[str, str] = field(default_factory=dict)

    def has(self, part: str) -> bool:
        """True when ``part`` (themes, survey, committee) was computed."""
        return part not in self.missing

    # Tables for readers: formatted text, one idea per table (the CSV artifacts hold numbers).

    def theme_table(self) -> pd.DataFrame:
        """Share of notes mentioning each theme, per source, with 95% intervals."""
        if not self.has("themes"):
            return pd.DataFrame()
        frequencies = self.themes.tables["frequencies"]
        overall = frequencies[frequencies["segment_by"] == ALL]
        sources = [ALL] + sorted(s for s in overall["source"].unique() if s != ALL)
        order = (
            overall[overall["source"] == ALL]
            .assign(_uncoded=lambda f: f["theme"] == UNCODED)
            .sort_values(["_uncoded", "share"], ascending=[True, False])["theme"]
            .tolist()
        )
        table = pd.DataFrame({"theme": [theme_label(t) if t != UNCODED else t for t in order]})
        for source in sources:
            part = overall[overall["source"] == source].set_index("theme").reindex(order)
            notes = int(part["notes"].iloc[0])
            name = "All notes" if source == ALL else _source_words(source)
            table[f"{name} (n={notes:,})"] = [
                fmt_rate_ci(r.share, r.ci_low, r.ci_high) for r in part.itertuples()
            ]
        return table

    def theme_test_table(self) -> pd.DataFrame:
        """Each theme against each outcome: rates with and without it, ratio, q-value."""
        if not self.has("themes") or self.themes.tables["tests"].empty:
            return pd.DataFrame()
        tests = self.themes.tables["tests"]
        order = {name: k for k, name in enumerate(OUTCOME_LABELS)}
        tests = tests.assign(_order=tests["outcome"].map(order)).sort_values(
            ["_order", "q_value"], kind="stable"
        )
        return pd.DataFrame(
            {
                "outcome": tests["outcome"].map(SHORT_OUTCOME_LABELS),
                "theme": tests["label"],
                "mentioned by": [
                    f"{fmt_pct(r.theme_share_outcome)} vs {fmt_pct(r.theme_share_rest)}"
                    for r in tests.itertuples()
                ],
                "outcome rate with theme": [
                    f"{fmt_pct(r.rate_with)} of {r.n_with:,} {_units(r)}"
                    for r in tests.itertuples()
                ],
                "without": [
                    f"{fmt_pct(r.rate_without)} of {r.n_without:,}" for r in tests.itertuples()
                ],
                "ratio (95% CI)": [
                    fmt_ratio_ci(r.effect, r.ci_low, r.ci_high) for r in tests.itertuples()
                ],
                "q_value": tests["q_value"],
                "significant": tests["significant"].astype(bool),
            }
        )

    def segment_table(self, max_rows: int = 20) -> pd.DataFrame:
        """Segments whose notes mention a theme significantly more often than other accounts."""
        if not self.has("themes"):
            return pd.DataFrame()
        frequencies = self.themes.tables["frequencies"]
        rows = frequencies[
            frequencies["significant"]
            & (frequencies["account_share"] > frequencies["account_share_rest"])
        ].sort_values("q_value")
        return pd.DataFrame(
            {
                "notes": rows["source"].map(_source_words),
                "segment": [
                    "accounts " + _segment_words(r.segment_by, r.segment) for r in rows.itertuples()
                ],
                "theme": rows["label"],
                "accounts of the segment mentioning it": [
                    f"{fmt_pct(r.account_share)} of {r.accounts:,}" for r in rows.itertuples()
                ],
                "other accounts": rows["account_share_rest"].map(fmt_pct),
                "q_value": rows["q_value"],
            }
        ).head(max_rows)

    def survey_table(self, per_outcome: int = 8) -> pd.DataFrame:
        """Survey answers by outcome (significant ones first, then the closest calls): share
        of each group giving the answer, ratio of outcome rates, q-value."""
        if not self.has("survey") or self.survey.summary.empty:
            return pd.DataFrame()
        table = (
            self.survey.summary.sort_values(
                ["outcome", "significant", "q_value"], ascending=[True, False, True]
            )
            .groupby("outcome", sort=False)
            .head(per_outcome)
        )
        return pd.DataFrame(
            {
                "group": table["outcome"].map(_outcome_group),
                "question": table["question"],
                "answer": table["answer"],
                "share of the group": table["answer_share_outcome"].map(fmt_pct),
                "of the rest": table["answer_share_rest"].map(fmt_pct),
                "ratio (95% CI)": [
                    fmt_ratio_ci(r.effect, r.ci_low, r.ci_high) for r in table.itertuples()
                ],
                "q_value": table["q_value"],
                "significant": table["significant"].astype(bool),
            }
        )

    def committee_table(self) -> pd.DataFrame:
        """New-business win rate per buying-committee signal and level, with clustered
        intervals, the ratio to the comparison deals and the q-value."""
        if not self.has("committee"):
            return pd.DataFrame()
        table = self.committee.summary
        return pd.DataFrame(
            {
                "signal": table["label"],
                "level": table["level"],
                "closed deals": table["deals"],
                "win rate (95% CI)": [
                    fmt_rate_ci(r.win_rate, r.win_rate_ci_low, r.win_rate_ci_high)
                    for r in table.itertuples()
                ],
                "compared with": table["win_rate_rest"].map(fmt_pct),
                "ratio (95% CI)": [
                    ""
                    if pd.isna(r.effect)
                    else f"{fmt_ratio(r.effect)} ({fmt_ratio(r.ci_low)}–{fmt_ratio(r.ci_high)})"
                    for r in table.itertuples()
                ],
                "q_value": table["q_value"],
            }
        )

    def cycle_table(self) -> pd.DataFrame:
        """Median sales cycle per buying-committee signal and level (Kaplan-Meier, open deals
        censored), with the log-rank q-value of the signal."""
        if not self.has("committee"):
            return pd.DataFrame()
        table = self.committee.summary
        return pd.DataFrame(
            {
                "signal": table["label"],
                "level": table["level"],
                "deals": table["cycle_deals"],
                "still open": table["open_deals"],
                "median cycle, days (95% CI)": [
                    _fmt_days(r.median_cycle_days, r.cycle_ci_low, r.cycle_ci_high)
                    for r in table.itertuples()
                ],
                "cycle_q_value": table["cycle_q_value"],
            }
        )

    def uncoded_terms_sentence(self) -> str:
        """The words that recur in uncoded notes, with how many notes hold each."""
        if not self.has("themes") or self.themes.tables["uncoded_terms"].empty:
            return ""
        terms = self.themes.tables["uncoded_terms"]
        listed = ", ".join(f"{r.term} ({r.notes:,})" for r in terms.itertuples())
        return f"Words that recur in uncoded notes (notes holding each): {listed}."

    def uncoded_sentence(self) -> str:
        """How much the codebook left uncoded, per source, in words."""
        if not self.has("themes"):
            return ""
        frequencies = self.themes.tables["frequencies"]
        rows = frequencies[(frequencies["segment_by"] == ALL) & (frequencies["theme"] == UNCODED)]
        parts = [
            f"{fmt_pct(r.share)} of {_source_words(r.source).lower() if r.source != ALL else 'all notes'}"
            f" ({r.mentions:,} of {r.notes:,})"
            for r in rows.itertuples()
        ]
        return (
            "Uncoded: " + "; ".join(parts) + ". Routine notes (a QBR, a training) rightly carry no "
            "theme; recurring uncoded wording is a candidate rule: add it under [codebook] or "
            "[codebook.add] in icp.toml."
        )

    def views(self) -> dict:
        """``{name: callable returning a View}``: the report's tables with their reasons.

        ``themes`` (:meth:`theme_table`), ``theme_tests`` (:meth:`theme_test_table`),
        ``segments`` (:meth:`segment_table`), ``quotes``, ``uncoded`` (the notes no rule
        matched), ``survey`` (:meth:`survey_table`), ``committee`` (:meth:`committee_table`)
        and ``committee_cycle`` (:meth:`cycle_table`).
        """
        has_themes = self.has("themes")
        themes = self.themes.tables if has_themes else {}
        no_committee = self.missing.get("committee", "no buying-committee signal could be measured")

        def segments() -> View:
            return View(
                "themes by segment",
                self.segment_table(),
                "No segment mentions a theme significantly more often than the other accounts."
                if has_themes
                else f"Not computed: {self.missing['themes']}.",
                empty_as="info",
            )

        def uncoded() -> View:
            return View(
                "uncoded notes",
                themes.get("uncoded"),
                "Every note carries at least one theme." if has_themes else "No notes.",
                empty_as="success" if has_themes else "skipped",
            )

        return {
            "themes": lambda: View(
                "feedback themes",
                self.theme_table(),
                self.missing.get("themes", "there is no feedback text"),
            ),
            "theme_tests": lambda: View(
                "themes as predictors",
                self.theme_test_table(),
                self.missing.get("themes", "there are no notes other than churn and loss notes"),
            ),
            "segments": segments,
            "quotes": lambda: View(
                "quotes",
                themes.get("quotes"),
                self.missing.get("themes", "no note carries a theme"),
                max_rows=80,
            ),
            "uncoded": uncoded,
            "survey": lambda: View(
                "survey answers",
                self.survey_table(),
                self.missing.get("survey", "too few respondents"),
            ),
            "committee": lambda: View(
                "buying-committee signals", self.committee_table(), no_committee
            ),
            "committee_cycle": lambda: View(
                "sales cycles by buying committee", self.cycle_table(), no_committee
            ),
        }

    def artifacts(self) -> dict[str, pd.DataFrame]:
        """``feedback_themes``, ``theme_tests``, ``survey_answers``, ``buying_committee``
        (each with its documented columns, empty when the part could not be computed)."""
        themes = self.themes.tables if self.themes is not None else {}
        return {
            "feedback_themes": _frame(themes.get("frequencies"), FEEDBACK_THEME_COLUMNS),
            "theme_tests": _frame(themes.get("tests"), THEME_TEST_COLUMNS),
            "survey_answers": _frame(
                None if self.survey is None else self.survey.summary, SURVEY_ANSWER_COLUMNS
            ),
            "buying_committee": _frame(
                None if self.committee is None else self.committee.summary,
                BUYING_COMMITTEE_COLUMNS,
            ),
        }


def _units(row) -> str:
    return "customers" if row.unit == "accounts" else "deals"


def _fmt_days(median, low, high) -> str:
    if pd.isna(median):
        return "–"
    interval = "" if pd.isna(low) else f" ({low:.0f}–{'open' if pd.isna(high) else f'{high:.0f}'})"
    return f"{median:.0f}{interval}"


def _frame(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame(columns=columns)
    return frame[columns].reset_index(drop=True)


def voice_of_customer(
    study: Study,
    *,
    codebook: Codebook | None = None,
    segment_by: list[str] | None = None,
    quotes_per_theme: int = 3,
    uncoded_sample: int = 20,
    max_quote_chars: int = 160,
) -> VoiceOfCustomer:
    """Feedback themes, survey answers and buying-committee signals, as far as the data allows.

    Parameters
    ----------
    study : Study
    codebook : Codebook, optional
        Default: the config's ``[codebook]`` (the built-in themes when it has none).
    segment_by : list of str, optional
        Account attributes to break theme frequencies down by; default the size segment and
        the categorical candidate attributes.
    quotes_per_theme, uncoded_sample, max_quote_chars :
        How many quoted examples per theme, how many uncoded notes to sample, and where quotes
        are cut.

    Returns
    -------
    VoiceOfCustomer
    """
    if codebook is None:
        codebook = Codebook.from_config(study.config.codebook, label=study.config.label)
    has_text = study.has("feedback") or (
        study.has("churn_events") and "feedback" in study.tables["churn_events"]
    )
    themes = (
        feedback_themes(
            study,
            codebook=codebook,
            segment_by=segment_by,
            quotes_per_theme=quotes_per_theme,
            uncoded_sample=uncoded_sample,
            max_quote_chars=max_quote_chars,
        )
        if has_text
        else None
    )
    survey = survey_answers(study) if study.has("survey") else None
    committee = (
        buying_committee(study) if study.has("deal_roles") and study.has("opportunities") else None
    )
    findings: list[str] = []
    caveats: list[str] = []
    absent = {
        "themes": f"{study.absent('feedback')} and no churn feedback text",
        "survey": study.absent("survey"),
        "committee": study.absent("deal_roles")
        if not study.has("deal_roles")
        else study.absent("opportunities"),
    }
    missing: dict[str, str] = {}
    for name, part in (("themes", themes), ("survey", survey), ("committee", committee)):
        if part is None or not part.ok:
            missing[name] = absent[name] if part is None else _lower_first(part.caveats[0])
        if part is not None:
            findings.extend(part.params.get("key_findings", part.findings[:3]))
            caveats.extend(part.caveats[1:] if not part.ok else part.caveats)
    if missing:
        what = {
            "themes": "feedback themes",
            "survey": "survey answers",
            "committee": "buying committee",
        }
        caveats.insert(
            0,
            "Skipped: "
            + "; ".join(f"{what[name]} ({reason.rstrip('.')})" for name, reason in missing.items())
            + ".",
        )
    result = VoiceOfCustomer(
        title="Voice of the customer",
        summary=themes.summary if themes is not None else pd.DataFrame(),
        findings=findings,
        caveats=caveats,
        themes=themes,
        survey=survey,
        committee=committee,
        codebook=codebook,
        params={"as_of": study.as_of.strftime("%Y-%m-%d"), "segment_by": segment_by},
        missing=missing,
    )
    result.takeaways = icp_takeaways(result, alpha=study.alpha)
    return result


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# ---------------------------------------------------------------------------------------------
# Feedback text


def canonical_source(values) -> pd.Series:
    """Feedback sources in the kit's words: churn, loss, call note, survey, or as written.

    Case and spacing are ignored; anything mentioning churn / cancel / exit is ``churn``,
    loss / lost ``loss``, call / meeting / note ``call note``; missing is ``(unspecified)``.
    """
    text = pd.Series(values, copy=False).astype("string").str.strip().str.lower()
    out = text.copy()
    out[text.str.contains(r"call|meeting|note|qbr", na=False)] = "call note"
    out[text.str.contains(r"\bloss|\blost", na=False)] = "loss"
    out[text.str.contains(r"churn|cancel|exit", na=False)] = "churn"
    out[text.str.contains(r"survey|interview", na=False)] = "survey"
    return out.fillna("(unspecified)").replace("", "(unspecified)").astype(object)


def collect_feedback(study: Study) -> pd.DataFrame:
    """Every feedback text of the study, once: ``account_id``, ``opportunity_id``, ``date``,
    ``source``, ``text``.

    Rows come from the ``feedback`` table, from ``churn_events.feedback`` when the same text is
    not already a churn note of that account in ``feedback`` (the demo and many CRMs hold churn
    feedback in both), and from free-text survey questions (source ``survey``). Blank texts are
    dropped; ``frame.attrs`` counts them (``blank``) and the churn duplicates (``duplicates``).
    """
    parts = []
    columns = ["account_id", "opportunity_id", "date", "source", "text"]
    feedback = study.tables.get("feedback")
    if feedback is not None and len(feedback):
        part = pd.DataFrame(
            {
                "account_id": feedback["account_id"],
                "opportunity_id": feedback.get(
                    "opportunity_id", pd.Series(pd.NA, index=feedback.index)
                ),
                "date": feedback.get("date", pd.Series(pd.NaT, index=feedback.index)),
                "source": canonical_source(feedback["source"])
                if "source" in feedback
                else "(unspecified)",
                "text": feedback["text"].astype("string"),
            }
        )
        parts.append(part)
    churn = study.tables.get("churn_events")
    duplicates = 0
    if churn is not None and "feedback" in churn and len(churn):
        part = pd.DataFrame(
            {
                "account_id": churn["account_id"],
                "opportunity_id": pd.NA,
                "date": churn["churned_at"],
                "source": "churn",
                "text": churn["feedback"].astype("string"),
            }
        )
        part = part[part["text"].fillna("").str.strip().ne("")]
        if parts:
            known = parts[0][parts[0]["source"] == "churn"]
            seen = set(zip(known["account_id"], normalise_text(known["text"]), strict=True))
            keys = zip(part["account_id"], normalise_text(part["text"]), strict=True)
            repeat = np.array([key in seen for key in keys], dtype=bool)
            duplicates = int(repeat.sum())
            part = part[~repeat]
        parts.append(part)
    survey = study.tables.get("survey")
    if survey is not None and len(survey):
        from icp_research.data.facts import free_text_questions, latest_survey_answers

        free = free_text_questions(survey)
        if free:
            answers = latest_survey_answers(survey)
            answers = answers[answers["question"].isin(free)]
            parts.append(
                pd.DataFrame(
                    {
                        "account_id": answers["account_id"],
                        "opportunity_id": pd.NA,
                        "date": pd.NaT,
                        "source": "survey",
                        "text": answers["answer"].astype("string"),
                    }
                )
            )
    if not parts:
        notes = pd.DataFrame(columns=columns)
        notes.attrs.update(blank=0, duplicates=0)
        return notes
    typed = [
        p[columns]
        .astype(
            {"account_id": "string", "opportunity_id": "string", "source": object, "text": "string"}
        )
        .assign(date=lambda f: pd.to_datetime(f["date"]))
        for p in parts
    ]
    notes = pd.concat(typed, ignore_index=True)
    blank = notes["text"].fillna("").str.strip().eq("") | notes["account_id"].isna()
    notes = notes[~blank].reset_index(drop=True)
    notes.attrs.update(blank=int(blank.sum()), duplicates=duplicates)
    return notes


def _segment_levels(
    study: Study, segment_by: list[str] | None
) -> tuple[dict[str, pd.Series], list[str]]:
    """attribute -> level per account_id (rare levels pooled, missing labelled), and the
    asked-for attributes that are not account columns."""
    facts = study.facts.set_index("account_id")
    if segment_by is None:
        segment_by = (["size_segment"] if "size_segment" in facts else []) + [
            c for c in study.attributes.categorical if c != "size_segment"
        ]
    levels = {}
    min_count = int(study.analysis.get("min_level_count", 10))
    unknown = [a for a in segment_by if a not in facts]
    for attribute in segment_by:
        if attribute in facts:
            levels[attribute] = pd.Series(
                pool_rare_levels(facts[attribute], min_count).to_numpy(), index=facts.index
            )
    return levels, unknown


def feedback_themes(
    study: Study,
    *,
    codebook: Codebook | None = None,
    segment_by: list[str] | None = None,
    quotes_per_theme: int = 3,
    uncoded_sample: int = 20,
    max_quote_chars: int = 160,
) -> Result:
    """Code every feedback text into themes and test the themes against the outcomes.

    Returns a :class:`Result` whose ``summary`` is one row per theme with its share of notes
    per source (``share_<source>`` with ``notes_<source>``) and ``tables``:

    - ``frequencies`` (artifact ``feedback_themes.csv``): theme x source x segment: ``notes``,
      ``mentions``, ``share`` with Wilson ``ci_low`` / ``ci_high`` (note level), ``accounts``,
      ``accounts_mentioning``, ``account_share`` vs ``account_share_rest`` (accounts of the
      segment vs other accounts with notes of that source) with ``p_value``, ``q_value``
      (BH within the source) and ``significant``. Source ``all`` and segment ``all`` are the
      totals; the theme ``(uncoded)`` counts notes no rule matched.
    - ``tests`` (artifact ``theme_tests.csv``): a theme as a predictor of an outcome: churned
      and best_customer (accounts; their notes other than churn and loss notes, written before
      any churn), won (new-business deals; notes linked to the deal, other than loss notes,
      written by the close), no_decision (lost deals; their loss notes). Deals are clustered
      by account. ``rate_with`` / ``rate_without``: outcome rate of units whose notes do / do not
      mention the theme; ``effect``: their ratio with ``ci_low`` / ``ci_high``;
      ``theme_share_outcome`` / ``theme_share_rest``: share of units with / without the outcome
      mentioning the theme; BH per outcome.
    - ``quotes``: examples per theme (masked, cut, no account names); ``uncoded``: the most
      common uncoded notes; ``uncoded_terms``: frequent words in uncoded notes; ``codebook``.
    """
    codebook = codebook or Codebook.from_config(study.config.codebook, label=study.config.label)
    alpha, correction = study.alpha, str(study.analysis.get("correction", "fdr_bh"))
    notes = collect_feedback(study)
    caveats: list[str] = []
    tables: dict[str, pd.DataFrame] = {"codebook": codebook.to_frame()}
    if notes.empty:
        return Result(
            title="Feedback themes",
            caveats=[
                "There is no feedback text to code (the feedback table and churn feedback "
                "are empty or absent)."
            ],
            tables=tables,
        )
    normalised = normalise_text(notes["text"])
    coded = codebook.code_normalised(normalised)
    coded[UNCODED] = ~coded.any(axis=1)
    segments, unknown = _segment_levels(study, segment_by)
    if unknown:
        caveats.append(
            f"Not account attributes, so themes are not broken down by them: {', '.join(unknown)}."
        )
    frequencies = _frequencies(notes, coded, segments, alpha, correction)
    tests, skipped = _outcome_tests(study, notes, coded.drop(columns=UNCODED), alpha, correction)
    seed = int(study.analysis.get("seed", 42))
    size = segments.get("size_segment")
    tables.update(
        frequencies=frequencies,
        tests=tests,
        quotes=_quotes(notes, normalised, coded, size, quotes_per_theme, max_quote_chars, seed),
        uncoded=_uncoded_sample(
            notes, normalised, coded[UNCODED], uncoded_sample, max_quote_chars, seed
        ),
        uncoded_terms=_uncoded_terms(normalised[coded[UNCODED]], seed=seed),
    )
    summary = _theme_summary(frequencies)
    findings, key = _theme_findings(notes, frequencies, tests, alpha)
    caveats.extend(skipped)
    if notes.attrs.get("duplicates"):
        caveats.append(
            f"{notes.attrs['duplicates']:,} churn feedback texts appear both in churn_events and "
            "in the feedback table; each is counted once."
        )
    caveats.append(
        "Themes are found by keyword rules: they miss what is phrased differently (see the "
        "uncoded sample) and do not understand negation; read the quoted examples before acting."
    )
    caveats.append(
        "Shares of notes treat notes as independent; accounts with many notes weigh more. Tests "
        "count accounts (or deals clustered by account), not notes, but an account with more "
        "notes (a long-standing customer) has more chances to mention any theme."
    )
    return Result(
        title="Feedback themes",
        summary=summary,
        findings=findings,
        caveats=caveats,
        tables=tables,
        params={"notes": len(notes), "themes": codebook.themes, "key_findings": key},
    )


def _frequencies(
    notes: pd.DataFrame,
    coded: pd.DataFrame,
    segments: dict[str, pd.Series],
    alpha: float,
    correction: str,
) -> pd.DataFrame:
    blocks = []
    sources = [ALL] + sorted(notes["source"].unique())
    for source in sources:
        mask = (
            np.ones(len(notes), bool) if source == ALL else (notes["source"] == source).to_numpy()
        )
        sub = coded[mask]
        account = notes.loc[mask, "account_id"]
        per_account = sub.groupby(account.to_numpy()).any()
        blocks.append(_frequency_block(sub, account, per_account, ALL, None, source))
        for attribute, level_of in segments.items():
            blocks.append(_frequency_block(sub, account, per_account, attribute, level_of, source))
    table = pd.concat(blocks, ignore_index=True)
    table["ci_low"], table["ci_high"] = proportion_ci(table["mentions"], table["notes"], alpha)
    table["q_value"] = np.nan
    for source in sources:
        family = (table["source"] == source).to_numpy()
        table.loc[family, "q_value"] = adjust_pvalues(table.loc[family, "p_value"], correction)
    table["significant"] = table["q_value"] < alpha
    table.insert(1, "label", table["theme"].map(lambda t: theme_label(t) if t != UNCODED else t))
    return table[FEEDBACK_THEME_COLUMNS]


def _frequency_block(sub, account, per_account, attribute, level_of, source) -> pd.DataFrame:
    """Rows of one source x attribute: per level and theme, note shares and an account test."""
    themes = np.asarray(sub.columns, dtype=object)
    if level_of is None:
        note_level = pd.Series(ALL, index=sub.index)
        account_level = pd.Series(ALL, index=per_account.index)
    else:
        note_level = pd.Series(
            level_of.reindex(account.to_numpy()).fillna(MISSING).to_numpy(), index=sub.index
        )
        account_level = level_of.reindex(per_account.index).fillna(MISSING)
    mentions = sub.groupby(note_level).sum()
    levels = mentions.index
    notes_n = note_level.value_counts().reindex(levels).to_numpy(dtype=float)
    account_mentions = per_account.groupby(account_level).sum().reindex(levels, fill_value=0)
    accounts_n = account_level.value_counts().reindex(levels, fill_value=0).to_numpy(dtype=float)
    n_levels, n_themes = len(levels), len(themes)
    k_level = account_mentions.to_numpy(dtype=float).ravel()
    n_level = np.repeat(accounts_n, n_themes)
    k_rest = np.tile(per_account.sum().to_numpy(dtype=float), n_levels) - k_level
    n_rest = len(per_account) - n_level
    with np.errstate(invalid="ignore", divide="ignore"):
        block = pd.DataFrame(
            {
                "theme": np.tile(themes, n_levels),
                "source": source,
                "segment_by": attribute,
                "segment": np.repeat(np.asarray(levels, dtype=object).astype(str), n_themes),
                "notes": np.repeat(notes_n, n_themes).astype(int),
                "mentions": mentions.to_numpy(dtype=int).ravel(),
                "share": mentions.to_numpy(dtype=float).ravel() / np.repeat(notes_n, n_themes),
                "accounts": n_level.astype(int),
                "accounts_mentioning": k_level.astype(int),
                "account_share": k_level / n_level,
                "account_share_rest": np.where(n_rest > 0, k_rest / n_rest, np.nan),
                "p_value": np.nan,
            }
        )
    # Segment differences are tested within one source only (sources differ in who writes
    # them), at account level, on real levels with a handful of accounts on each side.
    testable = (
        (attribute != ALL)
        & (source != ALL)
        & (block["theme"] != UNCODED).to_numpy()
        & ~block["segment"].isin([MISSING, OTHER]).to_numpy()
        & (np.minimum(n_level, n_rest) >= 5)
    )
    if testable.any():
        block.loc[testable, "p_value"] = two_proportion_pvalue(
            k_level[testable], n_level[testable], k_rest[testable], n_rest[testable]
        )
    return block


def _outcome_tests(
    study: Study, notes: pd.DataFrame, coded: pd.DataFrame, alpha: float, correction: str
) -> tuple[pd.DataFrame, list[str]]:
    """Themes as predictors of churn, best customers, won deals and no-decision losses."""
    rows: list[dict] = []
    skipped: list[str] = []
    facts = study.facts.set_index("account_id")
    voice = notes[~notes["source"].isin(OUTCOME_SOURCES)]
    # A note written after the customer left cannot have predicted it.
    churned_at = facts["churned_at"].reindex(voice["account_id"].to_numpy()).to_numpy()
    voice = voice[~(voice["date"].to_numpy() > churned_at)]
    sources = ", ".join(sorted(voice["source"].unique())) or "–"
    per_account = coded.loc[voice.index].groupby(voice["account_id"].to_numpy()).any()
    for outcome in ("churned", "best_customer"):
        if outcome not in facts:
            continue
        known = facts[outcome].astype("boolean")
        known = known[known.notna() & facts["is_customer"].astype(bool)]
        units = per_account.index.intersection(known.index)
        y = known.reindex(units).astype(bool).to_numpy()
        if len(units) < 10 or y.all() or not y.any():
            skipped.append(
                f"Themes could not be tested against {OUTCOME_LABELS[outcome]}: "
                + (
                    "there are no notes other than churn and loss notes (such as call notes)."
                    if len(units) == 0
                    else f"only {fmt_count(len(units), 'customer')} "
                    f"{'has' if len(units) == 1 else 'have'} such notes, or all share one outcome."
                )
            )
            continue
        rows.extend(
            _theme_rows(outcome, "accounts", sources, per_account.loc[units], y, None, alpha)
        )

    deals = study.deals
    if len(deals) and notes["opportunity_id"].notna().any():
        deals = deals.set_index("opportunity_id")
        linked = notes[notes["opportunity_id"].isin(deals.index)]
        # Won vs lost: notes on the deal other than loss notes, written by the close.
        pre = linked[~linked["source"].isin(OUTCOME_SOURCES)]
        closed_at = deals["closed_at"].reindex(pre["opportunity_id"].to_numpy()).to_numpy()
        pre = pre[~(pre["date"].to_numpy() > closed_at)]
        closed = deals[deals["is_new_business"] & deals["won"].notna()]
        per_deal = coded.loc[pre.index].groupby(pre["opportunity_id"].to_numpy()).any()
        units = per_deal.index.intersection(closed.index)
        won = closed["won"].reindex(units).astype(bool).to_numpy()
        if len(units) >= 10 and won.any() and not won.all():
            rows.extend(
                _theme_rows(
                    "won",
                    "deals",
                    ", ".join(sorted(pre["source"].unique())),
                    per_deal.loc[units],
                    won,
                    closed["account_id"].reindex(units).to_numpy(),
                    alpha,
                )
            )
        else:
            skipped.append(
                "Won and lost deals cannot be compared on notes: notes are linked to lost deals "
                "only (loss notes), which explain losses but cannot separate them from wins."
            )
        # No decision vs other losses: the loss notes of lost deals with a known reason.
        if "no_decision" in deals and "loss_reason" in deals:
            lost = deals[(deals["stage"] == "lost") & deals["loss_reason"].notna()]
            loss_notes = linked[linked["source"] == "loss"]
            per_lost = (
                coded.loc[loss_notes.index].groupby(loss_notes["opportunity_id"].to_numpy()).any()
            )
            units = per_lost.index.intersection(lost.index)
            y = lost["no_decision"].reindex(units).astype(bool).to_numpy()
            if len(units) >= 10 and y.any() and not y.all():
                rows.extend(
                    _theme_rows(
                        "no_decision",
                        "deals",
                        "loss",
                        per_lost.loc[units],
                        y,
                        lost["account_id"].reindex(units).to_numpy(),
                        alpha,
                    )
                )
            else:
                skipped.append(
                    "No-decision losses could not be compared with other losses: too few loss "
                    "notes are linked to lost deals with a loss reason."
                )
    elif len(deals):
        skipped.append(
            "Notes are not linked to deals (no opportunity_id): themes cannot be related to "
            "won, lost or no-decision deals."
        )
    tests = pd.DataFrame(rows, columns=THEME_TEST_COLUMNS)
    if len(tests):
        tests["q_value"] = np.nan
        for _, family in tests.groupby("outcome").groups.items():
            tests.loc[family, "q_value"] = adjust_pvalues(tests.loc[family, "p_value"], correction)
        tests["significant"] = tests["q_value"] < alpha
    return tests, skipped


def _theme_rows(outcome, unit, sources, mentions: pd.DataFrame, y, clusters, alpha) -> list[dict]:
    rows = []
    for theme in mentions.columns:
        x = mentions[theme].to_numpy(dtype=bool)
        if not x.any():
            continue
        test = clustered_ratio_test(y, x, clusters, alpha)
        rows.append(
            {
                "outcome": outcome,
                "outcome_label": OUTCOME_LABELS[outcome],
                "theme": theme,
                "label": theme_label(theme),
                "unit": unit,
                "sources": sources,
                "n": int(len(y)),
                "n_with": test["n_exposed"],
                "n_without": test["n_rest"],
                "rate_with": test["rate_exposed"],
                "rate_without": test["rate_rest"],
                "effect": test["ratio"],
                "ci_low": test["ci_low"],
                "ci_high": test["ci_high"],
                "theme_share_outcome": x[y].mean() if y.any() else np.nan,
                "theme_share_rest": x[~y].mean() if (~y).any() else np.nan,
                "p_value": test["p_value"],
                "q_value": np.nan,
                "significant": False,
                "test": test["test"],
            }
        )
    return rows


def _theme_summary(frequencies: pd.DataFrame) -> pd.DataFrame:
    """Theme x source share table (overall segment), themes by overall share."""
    overall = frequencies[frequencies["segment_by"] == ALL]
    wide = overall.pivot(index="label", columns="source", values="share")
    counts = overall.groupby("source")["notes"].first()
    order = [ALL] + [s for s in wide.columns if s != ALL]
    wide = wide[order].sort_values(ALL, ascending=False)
    wide = wide.loc[[i for i in wide.index if i != UNCODED] + [UNCODED]]
    wide.columns = [f"share_{_slug(c)}" for c in wide.columns]
    wide = wide.reset_index().rename(columns={"label": "theme"})
    for source in order:
        wide[f"notes_{_slug(source)}"] = int(counts[source])
    return wide


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(text).lower()).strip("_") or "x"


def _theme_findings(notes, frequencies, tests, alpha) -> tuple[list[str], list[str]]:
    """Findings in reading order, and the few of them that belong in a report summary."""
    findings = []
    by_source = notes["source"].value_counts()
    parts = ", ".join(f"{n:,} {_source_words(s).lower()}" for s, n in by_source.items())
    overall = frequencies[(frequencies["segment_by"] == ALL) & (frequencies["source"] == ALL)]
    uncoded = overall.loc[overall["theme"] == UNCODED].iloc[0]
    findings.append(
        f"{len(notes):,} feedback notes from {notes['account_id'].nunique():,} accounts ({parts}); "
        f"{fmt_pct(1 - uncoded['share'])} carry at least one theme, {fmt_pct(uncoded['share'])} "
        "are uncoded (a sample is shown to improve the codebook)."
    )
    key = [findings[0]]
    tested = set(tests["outcome"]) if len(tests) else set()
    significant = tests[tests["significant"]] if len(tests) else tests
    for outcome in ("churned", "best_customer", "won", "no_decision"):
        if outcome not in tested:
            continue
        # A theme named like the outcome ("no decision" notes of no-decision losses) says
        # nothing new; what comes with the outcome reads before what is rarer with it.
        family = significant[
            (significant["outcome"] == outcome) & (significant["theme"] != outcome)
        ]
        if outcome == "no_decision":
            family = family[family["effect"] > 1]
        strength = family["effect"].map(lambda e: abs(np.log(e)) if e > 0 else np.inf)
        family = family.assign(_weaker=family["effect"] <= 1, _strength=-strength)
        family = family.sort_values(["_weaker", "_strength"]).head(3)
        for rank, row in enumerate(family.itertuples()):
            findings.append(_test_sentence(row))
            if rank == 0:
                key.append(findings[-1])
        if family.empty:
            findings.append(
                f"No theme separates {OUTCOME_LABELS[outcome]} after correction for "
                "multiple testing."
            )
    segment_rows = frequencies[
        frequencies["significant"]
        & (frequencies["account_share"] > frequencies["account_share_rest"])
    ]
    segment_rows = segment_rows.assign(
        _gap=segment_rows["account_share"] - segment_rows["account_share_rest"]
    )
    order = {"churn": 0, "loss": 1}
    for source, group in sorted(
        segment_rows.groupby("source"), key=lambda item: order.get(item[0], 2)
    ):
        verb = "mentions" if source == "churn" else "mention"
        for rank, row in enumerate(group.nlargest(2, "_gap").itertuples()):
            findings.append(
                f"{_source_words(source)} of accounts {_segment_words(row.segment_by, row.segment)} "
                f"{verb} {row.label} far more often: {fmt_pct(row.account_share)} of "
                f"{row.accounts:,} accounts vs {fmt_pct(row.account_share_rest)} of the others "
                f"(q {_q(row.q_value)})."
            )
            if source == "churn" and rank == 0:
                key.append(findings[-1])
    for source in [s for s in by_source.index if s in OUTCOME_SOURCES]:
        top = frequencies[
            (frequencies["segment_by"] == ALL)
            & (frequencies["source"] == source)
            & (frequencies["theme"] != UNCODED)
        ].nlargest(3, "share")
        top = top[top["mentions"] > 0]
        if len(top):
            listed = ", ".join(
                f"{r.label} ({fmt_pct(r.share)}, {fmt_pct(r.ci_low)}–{fmt_pct(r.ci_high)})"
                for r in top.itertuples()
            )
            verb = "mentions" if source == "churn" else "mention"
            findings.append(f"{_source_words(source)} most often {verb} {listed}.")
    return findings, key


def _source_words(source: str) -> str:
    return {"churn": "Churn feedback", "loss": "Loss notes", "call note": "Call notes"}.get(
        source, f"{str(source).capitalize()} notes"
    )


def _q(q: float) -> str:
    text = fmt_p(q)
    return text if text.startswith("<") else f"= {text}"


def _test_sentence(row) -> str:
    units = "customers" if row.unit == "accounts" else "deals"
    ratio = f"{fmt_ratio(row.effect)}, {fmt_ratio(row.ci_low)}–{fmt_ratio(row.ci_high)}"
    if row.outcome == "best_customer":
        return (
            f"{fmt_pct(row.theme_share_outcome)} of best customers' notes mention {row.label}, "
            f"against {fmt_pct(row.theme_share_rest)} of other customers' (best-customer rate "
            f"{ratio}; q {_q(row.q_value)})."
        )
    if row.outcome == "no_decision":
        return (
            f"Loss notes of 'no decision' losses mention {row.label} in "
            f"{fmt_pct(row.theme_share_outcome)} of deals, against "
            f"{fmt_pct(row.theme_share_rest)} of other lost deals (q {_q(row.q_value)})."
        )
    verb = "churn" if row.outcome == "churned" else "are won"
    direction = "more" if row.effect > 1 else "less"
    return (
        f"Customers whose notes mention {row.label} {verb} {direction} often: "
        if row.outcome == "churned"
        else f"Deals whose notes mention {row.label} {verb} {direction} often: "
    ) + (
        f"{fmt_pct(row.rate_with)} of {row.n_with:,} {units} against "
        f"{fmt_pct(row.rate_without)} of {row.n_without:,} ({ratio}; q {_q(row.q_value)})."
    )


def _quotes(notes, normalised, coded, size, per_theme, max_chars, seed) -> pd.DataFrame:
    """A few examples per theme from different accounts and sources, masked and cut."""
    rng = np.random.default_rng(seed)
    rows = []
    for theme in coded.columns:
        if theme == UNCODED or per_theme <= 0:
            continue
        index = np.flatnonzero(coded[theme].to_numpy())
        if index.size == 0:
            continue
        chosen = notes.iloc[rng.permutation(index)].assign(_norm=normalised.iloc[index].values)
        chosen = chosen.drop_duplicates("_norm").drop_duplicates("account_id")
        # One per source first, so every kind of note gets a voice.
        chosen = chosen.assign(_rank=chosen.groupby("source").cumcount()).sort_values(
            "_rank", kind="stable"
        )
        for row in chosen.head(per_theme).itertuples():
            rows.append(
                {
                    "theme": theme_label(theme),
                    "source": row.source,
                    "segment": "" if size is None else str(size.get(row.account_id, "")),
                    "quote": row.text,
                }
            )
    quotes = pd.DataFrame(rows, columns=["theme", "source", "segment", "quote"])
    quotes["quote"] = redact(quotes["quote"], max_chars)
    return quotes


def _uncoded_sample(notes, normalised, uncoded, sample, max_chars, seed) -> pd.DataFrame:
    """The most frequent uncoded texts (then a random pick), so the codebook can grow."""
    columns = ["quote", "notes", "source"]
    rest = notes[uncoded.to_numpy()]
    if rest.empty or sample <= 0:
        return pd.DataFrame(columns=columns)
    grouped = (
        rest.assign(_key=normalised[uncoded.to_numpy()].to_numpy())
        .groupby("_key")
        .agg(quote=("text", "first"), notes=("text", "size"), source=("source", _mode))
    )
    rng = np.random.default_rng(seed)
    grouped["_tie"] = rng.random(len(grouped))
    grouped = grouped.sort_values(["notes", "_tie"], ascending=[False, True]).head(sample)
    grouped["quote"] = redact(grouped["quote"], max_chars)
    return grouped[columns].reset_index(drop=True)


def _mode(values: pd.Series):
    return values.value_counts().index[0]


# Common words that say nothing about a theme (English; notes in other languages keep theirs).
_STOPWORDS = {
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing",
    "don", "for", "from", "had", "has", "have", "having", "he", "her", "here", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most", "my", "no",
    "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "out", "over",
    "own", "per", "s", "same", "she", "should", "so", "some", "such", "t", "than", "that", "the",
    "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "why", "will", "with", "would", "you", "your", "customer", "call", "asked",
    "re", "ve", "ll", "get", "got",
}  # fmt: skip


def _uncoded_terms(normalised: pd.Series, top: int = 20, limit: int = 50_000, seed: int = 42):
    """Words that recur in (normalised) uncoded notes: candidates for new codebook rules."""
    columns = ["term", "notes"]
    if normalised.empty:
        return pd.DataFrame(columns=columns)
    if len(normalised) > limit:
        normalised = normalised.sample(limit, random_state=seed)
    words = normalised.str.split(" ").map(lambda w: sorted(set(w)) if w else [])
    words = words.explode().dropna()
    words = words[(words.str.len() >= 3) & ~words.isin(_STOPWORDS) & ~words.str.isdigit()]
    counts = words.value_counts().head(top)
    return pd.DataFrame({"term": counts.index.astype(str), "notes": counts.to_numpy()})


# ---------------------------------------------------------------------------------------------
# Survey answers


def survey_answers(study: Study, *, outcomes=("best_customer", "churned")) -> Result:
    """Survey answers that differ between best customers and the rest (and churned / retained).

    The survey columns of ``study.facts`` (``survey_<question>``) are compared per answer: for
    respondents giving the answer vs other respondents of the question, the outcome rate
    (``rate_with`` / ``rate_without``, ratio ``effect`` with a score interval, Fisher's exact test
    for small cells, chi-square otherwise) and the answer's share among respondents with and
    without the outcome. Answers rarer than ``min_level_count`` are pooled into ``(other)``.
    BH per outcome. The ``summary`` is the artifact ``survey_answers.csv``.
    """
    if not study.has("survey"):
        return Result(title="Survey answers", caveats=[study.absent("survey").capitalize() + "."])
    alpha, correction = study.alpha, str(study.analysis.get("correction", "fdr_bh"))
    min_count = int(study.analysis.get("min_level_count", 10))
    facts = study.facts
    mapping = {c: qa for c, qa in survey_columns(study.tables["survey"]).items() if c in facts}
    customers = facts[facts["is_customer"].astype(bool)]
    answered = customers[list(mapping)].notna().any(axis=1) if mapping else pd.Series(dtype=bool)
    findings, caveats = [], []
    n_customers = len(customers)
    respondents = int(answered.sum()) if len(answered) else 0
    questions = sorted({q for q, _ in mapping.values()})
    if respondents == 0:
        return Result(
            title="Survey answers",
            caveats=["No customer answered the survey as of the analysis date."],
        )
    low, high = proportion_ci(respondents, n_customers, alpha)
    findings.append(
        f"{respondents:,} customers answered the survey ({fmt_pct(respondents / n_customers)} of "
        f"{n_customers:,} customers, {fmt_pct(float(low))}–{fmt_pct(float(high))}); "
        f"{len(questions)} questions: {', '.join(questions)}."
    )
    rows = []
    for outcome in outcomes:
        if outcome not in facts:
            continue
        y_all = customers[outcome].astype("boolean")
        for column, (question, answer) in mapping.items():
            values = customers[column]
            keep = values.notna() & y_all.notna()
            if keep.sum() < 10:
                continue
            y = y_all[keep].astype(bool).to_numpy()
            if answer is None:
                levels = pool_rare_levels(values[keep], min_count)
                options = [(str(level), (levels == level).to_numpy()) for level in levels.unique()]
            else:
                options = [(answer, values[keep].eq("yes").to_numpy(dtype=bool))]
            for level, x in sorted(options, key=lambda o: -o[1].sum()):
                rows.append(_survey_row(outcome, question, level, column, x, y, alpha))
    table = pd.DataFrame(rows, columns=SURVEY_ANSWER_COLUMNS)
    if len(table):
        table["q_value"] = np.nan
        for _, family in table.groupby("outcome").groups.items():
            table.loc[family, "q_value"] = adjust_pvalues(table.loc[family, "p_value"], correction)
        table["significant"] = table["q_value"] < alpha
        for outcome in outcomes:
            family = table[(table["outcome"] == outcome) & table["significant"]]
            family = family[family["effect"] > 1].nlargest(4, "effect")
            for row in family.itertuples():
                findings.append(_survey_sentence(row))
            if outcome in set(table["outcome"]) and family.empty:
                findings.append(
                    f"No survey answer is significantly more common among "
                    f"{_outcome_group(outcome)} after correction for multiple testing."
                )
    caveats.append(
        "Survey answers are post-sale and come from the customers who chose to answer: they "
        "describe the best customers (and what to ask in discovery), but they never enter the "
        "lead score."
    )
    return Result(
        title="Survey answers",
        summary=table,
        findings=findings,
        caveats=caveats,
        params={"respondents": respondents, "questions": questions, "key_findings": findings[:3]},
    )


def _outcome_group(outcome: str) -> str:
    return {"best_customer": "best customers", "churned": "churned customers"}.get(outcome, outcome)


def _survey_row(outcome, question, answer, column, x, y, alpha) -> dict:
    test = clustered_ratio_test(y, x, None, alpha)
    n, respondents = int(x.sum()), int(len(x))
    low, high = proportion_ci(n, respondents, alpha)
    return {
        "outcome": outcome,
        "question": question,
        "answer": answer,
        "column": column,
        "respondents": respondents,
        "n": n,
        "answer_share": n / respondents,
        "share_ci_low": float(low),
        "share_ci_high": float(high),
        "rate_with": test["rate_exposed"],
        "rate_without": test["rate_rest"],
        "effect": test["ratio"],
        "ci_low": test["ci_low"],
        "ci_high": test["ci_high"],
        "answer_share_outcome": x[y].mean() if y.any() else np.nan,
        "answer_share_rest": x[~y].mean() if (~y).any() else np.nan,
        "p_value": test["p_value"],
        "q_value": np.nan,
        "significant": False,
        "test": test["test"],
    }


def _survey_sentence(row) -> str:
    group = _outcome_group(row.outcome)
    rest = "other customers" if row.outcome == "best_customer" else "retained customers"
    return (
        f"{group.capitalize()} more often answer {_answer_words(row.question, row.answer)}: "
        f"{fmt_pct(row.answer_share_outcome)} of {group} who answered, against "
        f"{fmt_pct(row.answer_share_rest)} of {rest} ({fmt_ratio(row.effect)} the rate; "
        f"q {_q(row.q_value)})."
    )


# ---------------------------------------------------------------------------------------------
# Buying committee

ECONOMIC_BUYER_ROLE = r"econom|budget (?:holder|owner)|decision maker|signator|signer"
CHAMPION_ROLE = r"champion"
TECHNICAL_ROLE = r"technical|security|it approver|tech approver"

SENIORITY_ORDER = ["C-level", "VP", "Director", "Manager", "IC", "(unknown)"]
# Checked in this order; the first that matches wins ("vice president" before "president").
SENIORITY_RULES = [
    ("VP", r"\b(?:vp|svp|evp|avp)\b|vice president|vicepresident|vizeprasident"),
    (
        "C-level",
        r"\bc[a-z]{1,2}o\b|\bchief\b|\bfounder|\bco founder|\bpresident\b|\bowner\b"
        r"|managing director|managing partner|geschaftsfuhrer|directeur general|director general",
    ),
    ("Director", r"director|\bhead\b|directeur|directora|\bleiter|\bleiterin"),
    ("Manager", r"manager|\blead\b|supervisor|gerente|\bresponsable\b|team lead|managerin"),
]
FUNCTION_RULES = [
    ("RevOps / Sales Ops", r"rev ?ops|revenue op|sales op|salesops|gtm op|go to market op"),
    ("Finance", r"financ|fp a|controller|controlling|accounting|\bcfo\b|treasur"),
    ("Sales", r"sales|revenue|account exec|business development|\bcro\b|commercial|vertrieb"),
    ("Marketing", r"marketing|growth|demand gen|\bcmo\b"),
    ("IT / Data", r"\bit\b|information tech|data|engineer|security|\bcto\b|\bcio\b|technolog"),
    ("Customer Success", r"customer success|support|\bcs\b|customer experience"),
    ("Procurement", r"procure|purchas|\bbuyer\b|sourcing|einkauf"),
    ("Legal", r"legal|counsel|contract|\blawyer"),
    ("Operations", r"operations|\bops\b|\bcoo\b"),
    ("Executive", r"executive|\bceo\b|founder|president|\bboard\b|management|geschaftsfuhr"),
]
PEOPLE_BANDS = [(1, "1"), (2, "2"), (3, "3"), (5, "4-5"), (np.inf, "6+")]


def seniority(titles) -> pd.Series:
    """Seniority from job titles by keyword rules (:data:`SENIORITY_RULES`).

    Returns C-level / VP / Director / Manager, ``IC`` for a title with no seniority keyword, and
    ``(unknown)`` where there is no title. Case, punctuation and accents are ignored.
    """
    return _classify(titles, SENIORITY_RULES, default="IC")


def business_function(departments, titles=None) -> pd.Series:
    """Function (RevOps / Sales Ops, Sales, Finance, IT / Data ...) by keyword rules
    (:data:`FUNCTION_RULES`) on the department, else on the title; ``Other`` when nothing
    matches and ``(unknown)`` when both are missing."""
    departments = pd.Series(departments, copy=False)
    out = _classify(departments, FUNCTION_RULES, default="Other")
    if titles is not None:
        from_title = _classify(
            pd.Series(titles, index=departments.index, copy=False), FUNCTION_RULES, "Other"
        )
        unclear = out.isin(["(unknown)", "Other"]) & ~from_title.isin(["(unknown)", "Other"])
        out = out.where(~unclear, from_title)
    return out


def _classify(values, rules, default: str) -> pd.Series:
    """First rule whose pattern matches the normalised text; ``default`` when none does and
    ``(unknown)`` for missing or blank values. Works on distinct values (titles repeat)."""
    values = pd.Series(values, copy=False)
    codes, uniques = pd.factorize(values.astype("string"), use_na_sentinel=True)
    text = normalise_text(pd.Series(uniques, dtype="string")).fillna("")
    labels = pd.Series(default, index=text.index, dtype=object)
    decided = np.zeros(len(text), dtype=bool)
    for name, pattern in rules:
        hit = text.str.contains(pattern, regex=True).to_numpy(dtype=bool) & ~decided
        labels[hit] = name
        decided |= hit
    labels[text.eq("").to_numpy()] = "(unknown)"
    lookup = np.append(labels.to_numpy(dtype=object), "(unknown)")
    return pd.Series(lookup[np.where(codes >= 0, codes, len(labels))], index=values.index)


def committee_signals(deal_roles: pd.DataFrame) -> pd.DataFrame:
    """One row per deal (index ``opportunity_id``) with its buying-committee signals.

    Columns: ``stakeholders`` (people recorded), ``people`` (band 1, 2, 3, 4-5, 6+),
    ``has_economic_buyer``, ``has_champion``, ``has_technical_approver`` (booleans, from the role
    text), ``champion_function`` and ``champion_seniority`` (of the most senior champion; <NA>
    without one) and ``economic_buyer_seniority``. Titles are reduced to seniority and function
    here and go no further.
    """
    roles = deal_roles[deal_roles["opportunity_id"].notna()].copy()
    role = _classify(
        roles["role"],
        [
            ("economic", ECONOMIC_BUYER_ROLE),
            ("champion", CHAMPION_ROLE),
            ("technical", TECHNICAL_ROLE),
        ],
        default="other",
    )
    roles["is_economic_buyer"] = role.eq("economic").to_numpy()
    roles["is_champion"] = role.eq("champion").to_numpy()
    roles["is_technical"] = role.eq("technical").to_numpy()
    titles = roles["title"] if "title" in roles else pd.Series(pd.NA, index=roles.index)
    departments = (
        roles["department"] if "department" in roles else pd.Series(pd.NA, index=roles.index)
    )
    roles["seniority"] = seniority(titles).to_numpy()
    roles["function"] = business_function(departments, titles).to_numpy()
    roles["_rank"] = roles["seniority"].map({s: i for i, s in enumerate(SENIORITY_ORDER)})
    grouped = roles.groupby("opportunity_id")
    signals = pd.DataFrame(
        {
            "stakeholders": grouped.size(),
            "has_economic_buyer": grouped["is_economic_buyer"].any(),
            "has_champion": grouped["is_champion"].any(),
            "has_technical_approver": grouped["is_technical"].any(),
        }
    )
    bands = pd.cut(
        signals["stakeholders"],
        [0] + [b for b, _ in PEOPLE_BANDS],
        labels=[label for _, label in PEOPLE_BANDS],
    )
    signals["people"] = bands.astype(str)
    ordered = roles.sort_values(["opportunity_id", "_rank"], kind="stable")
    champions = ordered[ordered["is_champion"]].drop_duplicates("opportunity_id")
    champions = champions.set_index("opportunity_id")
    signals["champion_function"] = champions["function"].reindex(signals.index)
    signals["champion_seniority"] = champions["seniority"].reindex(signals.index)
    buyers = ordered[ordered["is_economic_buyer"]].drop_duplicates("opportunity_id")
    signals["economic_buyer_seniority"] = buyers.set_index("opportunity_id")["seniority"].reindex(
        signals.index
    )
    signals.index.name = "opportunity_id"
    return signals


# signal column, label, binary?, only among deals where this column is True
COMMITTEE_SIGNALS = [
    ("has_economic_buyer", "economic buyer involved", True, None),
    ("has_champion", "champion involved", True, None),
    ("has_technical_approver", "technical approver involved", True, None),
    ("people", "people on the deal", False, None),
    ("champion_function", "champion's function", False, "has_champion"),
    ("champion_seniority", "champion's seniority", False, "has_champion"),
    ("economic_buyer_seniority", "economic buyer's seniority", False, "has_economic_buyer"),
]


def buying_committee(study: Study) -> Result:
    """Buying-committee signals against the new-business win rate and the sales cycle.

    Returns a :class:`Result` whose ``summary`` (artifact ``buying_committee.csv``) has one row
    per signal and level: closed ``deals``, ``accounts``, ``won``, ``win_rate`` with a
    cluster-robust interval (deals clustered by account), ``win_rate_rest`` (the other deals of
    the comparison), ``effect`` = win-rate ratio with ``ci_low`` / ``ci_high`` and ``p_value``
    from a cluster-robust Poisson model (Fisher's exact test where a cell is empty), ``q_value``
    (BH over all rows) and ``significant``; and the sales cycle from Kaplan-Meier curves with
    open deals censored: ``cycle_deals``, ``open_deals``, ``median_cycle_days`` with its
    interval, and the log-rank ``cycle_p_value`` / ``cycle_q_value`` of the signal (BH over
    signals). Binary signals are tested on their ``yes`` row; the champion's function and
    seniority compare deals with a champion among themselves. ``tables['deals']`` holds the
    per-deal signals (no titles).
    """
    from icp_research.methods.survival import time_to_close

    alpha, correction = study.alpha, str(study.analysis.get("correction", "fdr_bh"))
    min_count = int(study.analysis.get("min_level_count", 10))
    deals = study.deals
    if not study.has("deal_roles") or deals.empty:
        missing = "deal_roles" if not study.has("deal_roles") else "opportunities"
        return Result(title="Buying committee", caveats=[study.absent(missing).capitalize() + "."])
    new = deals[deals["is_new_business"] & deals["account_id"].notna()]
    signals = committee_signals(study.tables["deal_roles"])
    with_roles = new.join(signals, on="opportunity_id", how="inner")
    findings, caveats = [], []
    if with_roles.empty:
        return Result(
            title="Buying committee",
            caveats=["No new-business deal has buying-committee roles recorded."],
        )
    closed = with_roles[with_roles["won"].notna()]
    findings.append(
        f"{len(with_roles):,} of {len(new):,} new-business deals have their buying committee "
        f"recorded: a median of {with_roles['stakeholders'].median():.0f} people, an economic "
        f"buyer in {fmt_pct(with_roles['has_economic_buyer'].mean())} and a champion in "
        f"{fmt_pct(with_roles['has_champion'].mean())} of them."
    )
    rows = []
    cycle_rows = []
    for column, label, binary, among in COMMITTEE_SIGNALS:
        scope = closed if among is None else closed[closed[among].astype(bool)]
        everything = with_roles if among is None else with_roles[with_roles[among].astype(bool)]
        if scope.empty:
            continue
        if binary:
            levels = scope[column].map({True: "yes", False: "no"})
            all_levels = everything[column].map({True: "yes", False: "no"})
            tested = ["yes"]
            order = ["yes", "no"]
        else:
            levels = pool_rare_levels(scope[column], min_count)
            all_levels = everything[column].astype("string").fillna(MISSING).astype(object)
            all_levels = all_levels.where(all_levels.isin(set(levels)), OTHER)
            order = _level_order(column, levels)
            tested = [lv for lv in order if lv not in (MISSING, OTHER)]
            if len(tested) == 2 and len(order) == 2:
                tested = tested[:1]  # the other level's test is the same test, mirrored
        won = scope["won"].astype(bool).to_numpy()
        accounts = scope["account_id"].to_numpy()
        for level in order:
            in_level = (levels == level).to_numpy()
            if not in_level.any():
                continue
            per_account = pd.DataFrame({"a": accounts[in_level], "w": won[in_level]}).groupby("a")
            rate, low, high, clusters = clustered_rate_ci(
                per_account["w"].sum(), per_account["w"].size(), alpha
            )
            row = {
                "signal": column,
                "label": label,
                "level": level,
                "deals": int(in_level.sum()),
                "accounts": int(clusters),
                "won": int(won[in_level].sum()),
                "win_rate": rate,
                "win_rate_ci_low": low,
                "win_rate_ci_high": high,
                "win_rate_rest": won[~in_level].mean() if (~in_level).any() else np.nan,
                "effect": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "p_value": np.nan,
                "test": "",
            }
            if level in tested and (binary or len(order) > 1):
                test = clustered_ratio_test(won, in_level, accounts, alpha)
                row.update(
                    effect=test["ratio"],
                    ci_low=test["ci_low"],
                    ci_high=test["ci_high"],
                    p_value=test["p_value"],
                    test=test["test"],
                )
            rows.append(row)
        cycle_rows.extend(_cycle_rows(time_to_close, everything, all_levels, column, study, alpha))
    table = pd.DataFrame(rows)
    cycles = pd.DataFrame(cycle_rows)
    table = table.merge(cycles, on=["signal", "level"], how="left") if len(cycles) else table
    for name in ("cycle_deals", "open_deals", "median_cycle_days", "cycle_ci_low",
                 "cycle_ci_high", "cycle_p_value"):  # fmt: skip
        if name not in table:
            table[name] = np.nan
    table["q_value"] = adjust_pvalues(table["p_value"], correction)
    table["significant"] = table["q_value"] < alpha
    per_signal = table.groupby("signal")["cycle_p_value"].first()
    cycle_q = pd.Series(adjust_pvalues(per_signal, correction), index=per_signal.index)
    table["cycle_q_value"] = table["signal"].map(cycle_q)
    table = table[BUYING_COMMITTEE_COLUMNS]
    more, key = _committee_findings(table)
    findings.extend(more)
    caveats.append(
        "Deal roles are what reps recorded. Larger companies bring more people to a deal and "
        "company size changes win rates by itself: read the people count next to the size "
        "segments before calling it an effect."
    )
    caveats.append(
        "Sales cycles are Kaplan-Meier estimates with open deals censored; the log-rank tests "
        "treat deals as independent, so their p-values are somewhat optimistic."
    )
    return Result(
        title="Buying committee",
        summary=table,
        findings=findings,
        caveats=caveats,
        params={"key_findings": findings[:1] + key},
        tables={
            "deals": with_roles[
                ["opportunity_id", "account_id", "won", "cycle_days", *signals.columns]
            ]
        },  # fmt: skip
    )


def _level_order(column: str, levels: pd.Series) -> list[str]:
    present = list(levels.value_counts().index)
    if column.endswith("seniority"):
        ranked = SENIORITY_ORDER + [OTHER, MISSING]
        return sorted(present, key=lambda v: ranked.index(v) if v in ranked else len(ranked))
    if column == "people":
        ranked = [label for _, label in PEOPLE_BANDS]
        return sorted(present, key=lambda v: ranked.index(v) if v in ranked else len(ranked))
    return [v for v in present if v not in (OTHER, MISSING)] + [
        v for v in (OTHER, MISSING) if v in present
    ]


def _cycle_rows(time_to_close, deals, levels, column, study, alpha) -> list[dict]:
    data = deals[["stage", "created_at", "closed_at"]].assign(_level=levels.to_numpy())
    data = data[data["created_at"].notna()]
    if data["_level"].nunique() < 1 or len(data) < 2:
        return []
    try:
        curves = time_to_close(data, as_of=study.as_of, by="_level", alpha=alpha)
    except Exception:  # noqa: BLE001 - a curve that cannot be fitted leaves the cycle empty
        return []
    p = curves.logrank.p_value if curves.logrank is not None else np.nan
    rows = []
    for info in curves.summary.itertuples():
        rows.append(
            {
                "signal": column,
                "level": str(info.group),
                "cycle_deals": int(info.n),
                "open_deals": int(info.censored),
                "median_cycle_days": info.median,
                "cycle_ci_low": info.median_ci_low,
                "cycle_ci_high": info.median_ci_high,
                "cycle_p_value": p,
            }
        )
    return rows


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _deals_with(signal: str, level: str) -> str:
    """'deals with an economic buyer involved', 'deals whose champion works in Sales' ..."""
    if signal == "has_economic_buyer":
        return "deals with an economic buyer involved" if level == "yes" else "deals without one"
    if signal == "has_champion":
        return "deals with a champion" if level == "yes" else "deals without a champion"
    if signal == "has_technical_approver":
        return "deals with a technical approver" if level == "yes" else "deals without one"
    if signal == "people":
        return f"deals with {level} {'person' if level == '1' else 'people'} recorded"
    if signal == "champion_function":
        return f"deals whose champion works in {level}"
    if signal == "champion_seniority":
        return f"deals whose champion is {level}"
    if signal == "economic_buyer_seniority":
        return f"deals whose economic buyer is {level}"
    return f"deals with {signal} = {level}"


def _committee_findings(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    findings = []
    significant = table[table["significant"]]
    for row in significant.sort_values("q_value").head(5).itertuples():
        rest = (
            "deals without"
            if row.level == "yes"
            else "other deals with a champion"
            if row.signal.startswith("champion")
            else "other deals with an economic buyer"
            if row.signal.startswith("economic")
            else "the other deals"
        )
        findings.append(
            f"{_upper_first(_deals_with(row.signal, row.level))} win {fmt_pct(row.win_rate)} "
            f"({fmt_pct(row.win_rate_ci_low)}–{fmt_pct(row.win_rate_ci_high)}, {row.deals:,} "
            f"deals) against {fmt_pct(row.win_rate_rest)} for {rest} ({fmt_ratio(row.effect)}; "
            f"q {_q(row.q_value)})."
        )
    if significant.empty:
        findings.append(
            "No buying-committee signal changes the win rate significantly after correction."
        )
    key = findings[:2]
    cycles = table[table["cycle_q_value"] < 0.05].drop_duplicates("signal")
    for signal in cycles["signal"]:
        rows = table[(table["signal"] == signal) & table["median_cycle_days"].notna()]
        if len(rows) < 2:
            continue
        fastest = rows.nsmallest(1, "median_cycle_days").iloc[0]
        slowest = rows.nlargest(1, "median_cycle_days").iloc[0]
        findings.append(
            f"Sales cycles differ by {fastest['label']}: a median of "
            f"{fastest['median_cycle_days']:.0f} days for "
            f"{_deals_with(signal, fastest['level'])} against "
            f"{slowest['median_cycle_days']:.0f} for {_deals_with(signal, slowest['level'])} "
            f"(log-rank q {_q(fastest['cycle_q_value'])})."
        )
    return findings, key


# ---------------------------------------------------------------------------------------------
# What the ICP rules should take from this


def icp_takeaways(result: VoiceOfCustomer, alpha: float = 0.05) -> list[str]:
    """Plain-language lessons for the ICP rules from the significant findings only."""
    lessons: list[str] = []
    themes = result.themes
    if themes is not None and "tests" in themes.tables:
        tests = themes.tables["tests"]
        tests = tests[tests["significant"]] if len(tests) else tests
        risky = tests[(tests["outcome"] == "churned") & (tests["effect"] > 1)]
        if len(risky):
            lessons.append(
                "Churn risk shows up in what customers say before they leave: "
                + ", ".join(risky.nlargest(3, "effect")["label"])
                + ". Ask about these in discovery and treat them as exclude or 'needs work' "
                "signals."
            )
        good = tests[(tests["outcome"] == "best_customer") & (tests["effect"] > 1)]
        if len(good):
            lessons.append(
                "Best customers talk about "
                + ", ".join(good.nlargest(2, "effect")["label"])
                + ": make it an explicit ICP trait to qualify for (ask who will own the tool)."
            )
        stalls = tests[(tests["outcome"] == "no_decision") & (tests["effect"] > 1)]
        if len(stalls):
            lessons.append(
                "'No decision' losses come with "
                + ", ".join(stalls.nlargest(3, "effect")["label"])
                + ": confirm a budget owner and start the security review early, and do not "
                "count such deals as ICP pipeline until they are in place."
            )
        frequencies = themes.tables.get("frequencies", pd.DataFrame())
        churn_segments = (
            frequencies[
                (frequencies.get("source") == "churn")
                & frequencies.get("significant", False)
                & (frequencies.get("account_share") > frequencies.get("account_share_rest"))
            ]
            if len(frequencies)
            else frequencies
        )
        for row in churn_segments.nlargest(3, "account_share").itertuples():
            lessons.append(
                f"Customers {_segment_words(row.segment_by, row.segment)} leave citing {row.label} "
                f"({fmt_pct(row.account_share)} of their churn feedback vs "
                f"{fmt_pct(row.account_share_rest)}): a candidate exclude rule, or a condition "
                "the ICP must state."
            )
    survey = result.survey
    if survey is not None and len(survey.summary):
        best = survey.summary[
            (survey.summary["outcome"] == "best_customer")
            & survey.summary["significant"]
            & (survey.summary["effect"] > 1)
        ]
        if len(best):
            traits = "; ".join(
                _answer_words(r.question, r.answer) for r in best.nlargest(3, "effect").itertuples()
            )
            lessons.append(
                f"Best customers answer {traits} more often. These are post-sale answers: use "
                "them to describe the ICP and as discovery questions, not in the lead score."
            )
    committee = result.committee
    if committee is not None and len(committee.summary):
        table = committee.summary
        helps = table[table["significant"] & (table["effect"] > 1)]
        for row in helps[helps["signal"] != "people"].nsmallest(3, "q_value").itertuples():
            lessons.append(
                f"{_upper_first(_deals_with(row.signal, row.level))} win more "
                f"({fmt_pct(row.win_rate)} vs {fmt_pct(row.win_rate_rest)}): make it part of "
                "qualification for ICP deals."
            )
    if not lessons:
        lessons.append(
            "Nothing in the feedback, survey or buying committees is strong enough to change "
            "the ICP rules yet; keep collecting and re-run next quarter."
        )
    return lessons


# ---------------------------------------------------------------------------------------------
# Plots


def plot_theme_shares(themes: Result, *, sources=None, ax=None):
    """Share of notes mentioning each theme, by source, with 95% intervals. Returns the Axes."""
    import matplotlib.pyplot as plt

    table = themes.tables.get("frequencies", pd.DataFrame())
    data = table[
        (table.get("segment_by") == ALL) & (table.get("source") != ALL)
        & (table.get("theme") != UNCODED)
    ] if len(table) else table  # fmt: skip
    if sources is not None and len(data):
        data = data[data["source"].isin(list(sources))]
    if ax is None:
        n_labels = data["label"].nunique() if len(data) else 1
        _, ax = plt.subplots(figsize=(8, max(3.0, 0.45 * n_labels + 1)))
    if data.empty:
        ax.text(0.5, 0.5, "No coded feedback", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    order = data.groupby("label")["share"].max().sort_values().index.tolist()
    sources_present = sorted(data["source"].unique())
    height = 0.8 / len(sources_present)
    import seaborn as sns

    colors = sns.color_palette("colorblind", len(sources_present))
    for i, (source, color) in enumerate(zip(sources_present, colors, strict=True)):
        part = data[data["source"] == source].set_index("label").reindex(order)
        y = np.arange(len(order)) + (i - (len(sources_present) - 1) / 2) * height
        share = part["share"].to_numpy(dtype=float) * 100
        err = error_bars(part["share"], part["ci_low"], part["ci_high"], 100)
        ax.barh(y, share, height=height, color=color, label=source, xerr=err,
                error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#444"})  # fmt: skip
    ax.set_yticks(np.arange(len(order)))
    ax.set_yticklabels(order)
    ax.set_xlabel("Notes mentioning the theme (%), 95% interval")
    ax.set_title("Feedback themes by source")
    ax.legend(title="Source", loc="lower right")
    return ax


def plot_committee(committee: Result, *, ax=None):
    """New-business win rate per buying-committee signal level, with clustered 95% intervals.

    Returns the Axes.
    """
    import matplotlib.pyplot as plt

    table = committee.summary
    if ax is None:
        _, ax = plt.subplots(figsize=(8, max(3.0, 0.32 * len(table) + 1)))
    if table.empty:
        ax.text(0.5, 0.5, "No committee data", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    labels = [f"{r.label}: {r.level}" for r in table.itertuples()]
    y = np.arange(len(table))[::-1]
    rate = table["win_rate"].to_numpy(float) * 100
    err = error_bars(table["win_rate"], table["win_rate_ci_low"], table["win_rate_ci_high"], 100)
    colors = np.where(table["significant"].to_numpy(bool), "#0173b2", "#999999")
    ax.errorbar(rate, y, xerr=err, fmt="none", ecolor="#555", elinewidth=1)
    ax.scatter(rate, y, c=colors, zorder=3)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_xlabel("New-business win rate (%), 95% interval clustered by account")
    ax.set_title("Win rate by buying-committee signal (blue: significant)")
    return ax


def save_artifacts(study: Study, result: VoiceOfCustomer) -> list[Path]:
    """Write the voice-of-the-customer tables declared in the registry, and the result."""
    frames = result.artifacts()
    written = []
    for artifact in registry.analysis("voc").saves:
        written += study.save_artifact(artifact, frames[artifact.name])
    study.save_result(result, "voc")
    return written


def _segment_words(attribute: str, value) -> str:
    """A segment in words after "accounts": ``crm = None`` -> "with no CRM", ``team_owner =
    RevOps`` -> "with RevOps as team owner" (the code form stays in the CSV files)."""
    from icp_research.analyses.antipatterns import Condition
    from icp_research.analyses.blueprint.statement import condition_words

    return condition_words(Condition(str(attribute), "equals", str(value)))


def _answer_words(question: str, answer) -> str:
    """A survey answer in words: ``team_owner = RevOps`` -> '"RevOps" to team owner'."""
    return f'"{answer}" to {str(question).replace("_", " ")}'
