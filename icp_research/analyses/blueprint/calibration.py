"""The win probability beside the fit score: calibrate the score, check it, and show it.

:func:`calibrate_fit_score` maps a fitted scorecard's 0-100 score to the probability of its
outcome (:mod:`icp_research.methods.calibration`). The map is fitted on rows of a period that
played no part in choosing the score's attributes (the *calibration* period), so the probabilities
are not flattered by the selection; it is then checked on the latest quarters (the *check*
period): Brier score and its decomposition, calibration slope and intercept, observed vs
expected outcomes, a reliability table and diagram. Each tier also gets its honest band: the
observed outcome rate with its interval in the calibration period, beside the mean probability.

The result's :meth:`FitScoreCalibration.to_json` is the ``calibration`` block of ``icp.json``:
the :meth:`icp_research.methods.calibration.Calibration.to_dict` fields, plus ``check`` (the check
period's measures, :meth:`icp_research.methods.calibration.CalibrationCheck.to_dict`) and
``tiers`` (per tier: ``name``, ``min_score``, ``n``, ``events``, ``rate``, ``ci_low``,
``ci_high``, ``mean_probability``, in the calibration period). ``icp-research score`` reads it
to write ``win_probability``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from icp_research.analyses.blueprint.text import (
    OUTCOME_WORDS,
    pct,
    plain,
    plain_records,
    rate_ci_text,
)
from icp_research.errors import DataError
from icp_research.formatting import error_bars
from icp_research.methods.calibration import (
    DEFAULT_METHOD,
    Calibration,
    CalibrationCheck,
    band_table,
    evaluate_calibration,
    fit_calibration,
)
from icp_research.result import Result

__all__ = ["FitScoreCalibration", "calibrate_fit_score", "plot_reliability"]


@dataclass(repr=False)
class FitScoreCalibration(Result):
    """The calibrated win probability of a fit score and its check (see the module docstring).

    ``calibration`` is the fitted map (apply it with ``calibration.apply(scores)``), ``check``
    its measures on the check period. ``summary`` is the check's measures (Brier, decomposition,
    slope, intercept, observed / expected); ``tables`` hold ``reliability`` (predicted vs
    observed per probability bin, check period) and ``tiers`` (per tier and period: observed
    rate with interval and mean probability).
    """

    calibration: Calibration | None = None
    check: CalibrationCheck | None = None
    tier_bands: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def usable(self) -> bool:
        return self.calibration is not None and self.calibration.usable

    def tier_table(self) -> pd.DataFrame:
        """Per tier and period, in words: deals, observed rate with its 95% interval, mean
        win probability (the display form of ``tables['tiers']``)."""
        bands = self.tier_bands
        if bands is None or bands.empty:
            return pd.DataFrame()
        unit = self.params.get("unit", "rows")
        return pd.DataFrame(
            {
                "period": bands["period"].map(
                    {"calibration": "calibration period", "check": "latest quarters"}
                ),
                "tier": bands["tier"],
                "min score": bands["min_score"],
                unit: bands["n"],
                "observed (95% CI)": [
                    rate_ci_text(r, lo, hi)
                    for r, lo, hi in zip(
                        bands["rate"], bands["ci_low"], bands["ci_high"], strict=True
                    )
                ],
                "mean win probability": [pct(v) for v in bands["mean_probability"]],
            }
        )

    def check_table(self) -> pd.DataFrame:
        """The check's measures in words: value with its 95% interval and how to read it."""
        summary = self.summary
        if summary is None or summary.empty:
            return pd.DataFrame()

        def cell(value, low, high):
            if not np.isfinite(value):
                return "not estimable"
            text = f"{value:.3f}" if abs(value) < 1 and value != 0 else f"{value:.2f}"
            if np.isfinite(low) and np.isfinite(high):
                text += f" ({low:.2f}–{high:.2f})"
            return text

        return pd.DataFrame(
            {
                "measure": summary["measure"],
                "value (95% CI)": [
                    cell(v, lo, hi)
                    for v, lo, hi in zip(
                        summary["value"], summary["ci_low"], summary["ci_high"], strict=True
                    )
                ],
                "reads": summary["reads"],
            }
        )

    def to_json(self) -> dict:
        """The ``calibration`` block of icp.json."""
        block = self.calibration.to_dict() if self.calibration is not None else {}
        block["check"] = self.check.to_dict() if self.check is not None else None
        bands = self.tier_bands
        if len(bands):
            bands = bands[bands["period"] == "calibration"]
        block["tiers"] = [
            {
                "name": row["tier"],
                "min_score": plain(row["min_score"]),
                "n": int(row["n"]),
                "events": int(row["events"]),
                "rate": plain(row["rate"]),
                "ci_low": plain(row["ci_low"]),
                "ci_high": plain(row["ci_high"]),
                "mean_probability": plain(row["mean_probability"]),
            }
            for row in plain_records(bands)
        ]
        return block


def _outcome(rows: pd.DataFrame, outcome: str) -> np.ndarray:
    from icp_research.scoring.scorecard import _outcome_values

    return _outcome_values(rows, outcome)


def _clusters(rows: pd.DataFrame, cluster: str | None):
    if cluster is None:
        return None
    if cluster not in rows.columns:
        raise DataError(f"cluster column {cluster!r} not found; columns are {list(rows.columns)}")
    return rows[cluster].to_numpy(dtype=object)


def _period_of(rows: pd.DataFrame, period, date: str | None):
    if period is not None or date is None or date not in rows.columns or rows.empty:
        return period
    days = pd.to_datetime(rows[date], errors="coerce").dropna()
    return (days.min(), days.max()) if len(days) else None


def calibrate_fit_score(
    scorecard,
    fit_rows: pd.DataFrame,
    check_rows: pd.DataFrame | None,
    outcome: str,
    *,
    cluster: str | None = None,
    alpha: float = 0.05,
    fit_period=None,
    check_period=None,
    date: str | None = None,
    method: str = DEFAULT_METHOD,
    n_bins: int = 10,
    unit: str | None = None,
) -> FitScoreCalibration:
    """Calibrate a scorecard's fit score to a win probability and check it.

    Parameters
    ----------
    scorecard : Scorecard
        The fitted score (:func:`icp_research.scoring.scorecard.fit_scorecard`).
    fit_rows : DataFrame
        Rows with the scorecard's attributes and ``outcome``, of a period that played no part in
        choosing the attributes (the calibration period). Rows with an unknown outcome are left
        out.
    check_rows : DataFrame or None
        Rows of the latest quarters to check the probabilities on (None or empty: no check).
    outcome : str
        The yes/no outcome column (``won``).
    cluster : str, optional
        Column with the account of each row (deals): cluster-robust intervals throughout.
    alpha : float
        1 - confidence of the intervals.
    fit_period, check_period : dict or (start, end), optional
        The periods' dates, stored in icp.json (see
        :func:`icp_research.methods.calibration.period_dict`); by default the first and last
        ``date`` of the rows when ``date`` names a column.
    date : str, optional
        Column that places a row in time (``closed_at``), for the default periods.
    method : "logistic" or "isotonic"
        See :mod:`icp_research.methods.calibration`.
    n_bins : int
        Probability bins of the reliability table.
    unit : str, optional
        What a row is, for the sentences (default from the outcome: deals for ``won``).

    Returns
    -------
    FitScoreCalibration
        Never raises for thin data: with too few outcomes the calibration says so (its
        ``apply`` gives NaN), the tables are empty and a caveat explains.
    """
    label, verb, default_unit = OUTCOME_WORDS.get(outcome, (f"{outcome} rate", outcome, "rows"))
    unit = unit or default_unit
    tier_names = [name for name, _ in scorecard.tiers]
    min_scores = dict(scorecard.tiers)

    y_fit = _outcome(fit_rows, outcome)
    scores_fit = scorecard.score(fit_rows, reasons=False)["fit_score"].to_numpy(dtype=float)
    groups_fit = _clusters(fit_rows, cluster)
    calibration = fit_calibration(
        scores_fit,
        y_fit,
        method=method,
        cluster=groups_fit,
        period=_period_of(fit_rows, fit_period, date),
        outcome_name=outcome,
    )
    findings: list[str] = []
    caveats = list(calibration.caveats)
    bands = []
    p_fit = calibration.apply(scores_fit)
    table = band_table(
        np.asarray(scorecard.tier_of(scores_fit).astype(str), dtype=object),
        y_fit,
        p_fit,
        order=tier_names,
        cluster=groups_fit,
        alpha=alpha,
    )
    bands.append(table.assign(period="calibration"))

    check = None
    if check_rows is not None and len(check_rows):
        y_check = _outcome(check_rows, outcome)
        scores_check = scorecard.score(check_rows, reasons=False)["fit_score"].to_numpy(float)
        groups_check = _clusters(check_rows, cluster)
        p_check = calibration.apply(scores_check)
        if calibration.usable:
            check = evaluate_calibration(
                p_check,
                y_check,
                cluster=groups_check,
                n_bins=n_bins,
                alpha=alpha,
                period=_period_of(check_rows, check_period, date),
            )
            caveats += check.caveats
        bands.append(
            band_table(
                np.asarray(scorecard.tier_of(scores_check).astype(str), dtype=object),
                y_check,
                p_check,
                order=tier_names,
                cluster=groups_check,
                alpha=alpha,
            ).assign(period="check")
        )
    elif calibration.usable:
        caveats.append("No check period: the win probability has not been checked on later rows.")

    tier_bands = pd.concat(bands, ignore_index=True).rename(
        columns={"group": "tier", "mean_predicted": "mean_probability"}
    )
    tier_bands.insert(1, "min_score", tier_bands["tier"].map(min_scores))
    tier_bands = tier_bands[
        ["period", "tier", "min_score", "n", "events", "rate", "ci_low", "ci_high"]
        + ["mean_probability"]
    ]

    if not calibration.usable:
        caveats.insert(0, f"No win probability: {calibration.reason}.")
    else:
        findings.append(
            f"Win probability: {calibration.describe()} Each tier's {label} in that period, "
            "with its 95% interval: "
            + "; ".join(
                f"{row.tier} {pct(row.rate)} ({pct(row.ci_low)}–{pct(row.ci_high)}, n = {row.n:,})"
                for row in tier_bands[tier_bands["period"] == "calibration"].itertuples()
                if row.n
            )
            + "."
        )
        if check is not None and check.n:
            ratio_low, ratio_high = check.observed_expected_ci
            ratio = (
                f" (observed / expected {check.observed_expected:.2f}, 95% CI {ratio_low:.2f}–"
                f"{ratio_high:.2f})"
                if np.isfinite(ratio_high)
                else ""
            )
            slope = (
                f"calibration slope {check.slope:.2f} (95% CI {check.slope_ci[0]:.2f}–"
                f"{check.slope_ci[1]:.2f}; 1 is right), "
                if np.isfinite(check.slope_ci[1])
                else "too few outcomes for a calibration slope, "
            )
            findings.append(
                f"On the check period's {check.n:,} {unit} the probabilities added up to "
                f"{check.expected:,.1f} expected {verb} and {check.events:,} were{ratio}; "
                f"{slope}Brier score {check.brier:.3f} vs "
                f"{check.brier_reference:.3f} for the base rate."
            )
            if check.drift:
                caveats.append(
                    "The win probabilities missed on the check period (the calibration slope's "
                    "or the observed / expected ratio's interval excludes 1): read them as "
                    "approximate until the blueprint is rerun."
                )
    summary = check.summary_table() if check is not None else pd.DataFrame()
    reliability = check.table if check is not None else pd.DataFrame()
    return FitScoreCalibration(
        title=f"Win probability: {outcome} from the fit score",
        summary=summary,
        findings=findings,
        caveats=caveats,
        tables={"reliability": reliability, "tiers": tier_bands, "summary": summary},
        params={
            "outcome": outcome,
            "method": method,
            "cluster": cluster,
            "alpha": alpha,
            "n_bins": n_bins,
            "unit": unit,
        },
        calibration=calibration,
        check=check,
        tier_bands=tier_bands,
    )


def plot_reliability(result: FitScoreCalibration, *, ax=None, color: str = "#0173B2"):
    """Reliability diagram: observed outcome rate (95% interval) against the mean predicted
    probability of each bin on the check period, with the diagonal of perfect calibration.
    Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    table = result.tables.get("reliability", pd.DataFrame())
    if table is None or table.empty:
        why = "no check period"
        if result.calibration is not None and not result.calibration.usable:
            why = "too few outcomes" if result.calibration.status != "failed" else "not fitted"
        ax.text(
            0.5,
            0.5,
            f"No calibration check ({why})",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        return ax
    predicted = table["mean_predicted"].to_numpy(dtype=float)
    observed = table["observed"].to_numpy(dtype=float)
    top = float(np.nanmax([predicted.max(), table["ci_high"].max(), 0.05]))
    top = min(1.0, top * 1.08)
    ax.plot([0, top], [0, top], color="0.5", linestyle="--", linewidth=1, label="perfect")
    ax.errorbar(
        predicted,
        observed,
        yerr=error_bars(observed, table["ci_low"], table["ci_high"]),
        fmt="o",
        color=color,
        capsize=3,
        label="observed (95% CI)",
    )
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    words = OUTCOME_WORDS.get(result.params.get("outcome", ""), ("outcome rate",))[0]
    ax.set_xlabel("Predicted probability (mean of the bin)")
    ax.set_ylabel(f"Observed {words}")
    n = result.check.n if result.check is not None else int(table["n"].sum())
    ax.set_title(f"Win probability check (n={n:,})")
    ax.legend(frameon=False, loc="upper left")
    return ax
