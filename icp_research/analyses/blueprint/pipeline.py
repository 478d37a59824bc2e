"""The expected pipeline: win probabilities summed over deals, against what closed.

Sales ops sum ``win_probability`` over open deals to get an expected number of wins. Two
tables say how far that sum can be trusted and what it says now:

- :func:`expectation_backtest`: per quarter of the validation period (nothing about the score
  was chosen there), by size segment and tier: the new-business deals that closed in the
  quarter, the wins their probabilities add up to (``expected``) and the wins that happened
  (``won``), with observed / expected and its exact Poisson interval. The earlier validation
  quarter is the calibration's own period (observed / expected is 1 there by construction for
  the whole; segments and tiers can still miss); the latest quarter is the honest check.
- :func:`open_pipeline`: the new-business deals open on the as-of date, by segment and tier:
  how many, and how many wins their probabilities add up to.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from icp_research.data.facts import with_traits

#: Columns of the backtest of the expectation.
BACKTEST_COLUMNS = [
    "quarter",
    "segment",
    "tier",
    "deals",
    "expected",
    "won",
    "observed_expected",
    "ci_low",
    "ci_high",
]

#: Columns of the open pipeline.
OPEN_COLUMNS = ["segment", "tier", "open_deals", "expected_wins", "mean_probability"]


def _probabilities(blueprint, deals: pd.DataFrame) -> tuple[np.ndarray, pd.Categorical]:
    scores = blueprint.scorecard.score(deals, reasons=False)["fit_score"].to_numpy(float)
    return blueprint.calibration.calibration.apply(scores), blueprint.scorecard.tier_of(scores)


def _usable(blueprint) -> bool:
    calibration = getattr(blueprint, "calibration", None)
    return (
        blueprint.scorecard is not None
        and calibration is not None
        and calibration.usable
        and blueprint.outcome.get("name") == "won"
    )


def _segments(study, deals: pd.DataFrame) -> pd.Series:
    facts = study.facts
    if "size_segment" not in facts.columns:
        return pd.Series("all", index=deals.index)
    by_account = facts.set_index("account_id")["size_segment"]
    return deals["account_id"].map(by_account).astype(object).fillna("unknown size")


def _observed_expected(won: float, expected: float, alpha: float) -> tuple[float, float, float]:
    """Observed / expected wins with the exact Poisson interval of the observed count."""
    if not expected > 0:
        return np.nan, np.nan, np.nan
    low = sps.chi2.ppf(alpha / 2, 2 * won) / 2 if won > 0 else 0.0
    high = sps.chi2.ppf(1 - alpha / 2, 2 * (won + 1)) / 2
    return won / expected, low / expected, high / expected


def _summarise(frame: pd.DataFrame, keys: list[str], alpha: float) -> pd.DataFrame:
    rows = []
    for values, part in frame.groupby(keys, sort=True, observed=True):
        values = values if isinstance(values, tuple) else (values,)
        expected, won = float(part["p"].sum()), float(part["won"].sum())
        ratio, low, high = _observed_expected(won, expected, alpha)
        rows.append(
            dict(zip(keys, values, strict=True))
            | {
                "deals": len(part),
                "expected": expected,
                "won": int(won),
                "observed_expected": ratio,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def expectation_backtest(blueprint, study, alpha: float = 0.05) -> pd.DataFrame:
    """Per validation quarter (and in all), by segment and tier (and in all): closed
    new-business deals, expected wins (the sum of their win probabilities), wins, and
    observed / expected with its exact Poisson interval (:data:`BACKTEST_COLUMNS`). Empty
    without a usable win probability."""
    if not _usable(blueprint):
        return pd.DataFrame(columns=BACKTEST_COLUMNS)
    start = pd.Timestamp(blueprint.outcome.get("validation_from"))
    deals = study.deals
    closed = deals[
        deals["is_new_business"].astype(bool)
        & deals["is_closed"].astype(bool)
        & with_traits(deals)
        & (pd.to_datetime(deals["closed_at"]) >= start)
    ]
    if closed.empty:
        return pd.DataFrame(columns=BACKTEST_COLUMNS)
    p, tiers = _probabilities(blueprint, closed)
    frame = pd.DataFrame(
        {
            "quarter": pd.to_datetime(closed["closed_at"]).dt.to_period("Q").astype(str),
            "segment": _segments(study, closed).to_numpy(),
            "tier": np.asarray(tiers.astype(str), dtype=object),
            "p": p,
            "won": closed["won"].astype(bool).to_numpy(float),
        }
    )
    parts = []
    for quarter_key in ("quarter", None):
        for split in (["segment"], ["tier"], []):
            keys = ([quarter_key] if quarter_key else []) + split
            table = _summarise(frame.assign(_all="all"), keys or ["_all"], alpha)
            for column in ("quarter", "segment", "tier"):
                if column not in table.columns:
                    table[column] = "all"
            parts.append(table.drop(columns="_all", errors="ignore"))
    return pd.concat(parts, ignore_index=True)[BACKTEST_COLUMNS]


def open_pipeline(blueprint, study) -> pd.DataFrame:
    """The new-business deals open on the as-of date, by segment and tier (and in all): how
    many, the wins their probabilities add up to, and the mean probability
    (:data:`OPEN_COLUMNS`). Empty without a usable win probability or open deals."""
    if not _usable(blueprint):
        return pd.DataFrame(columns=OPEN_COLUMNS)
    deals = study.deals
    open_deals = deals[
        deals["is_new_business"].astype(bool)
        & ~deals["is_closed"].astype(bool)
        & with_traits(deals)
    ]
    if open_deals.empty:
        return pd.DataFrame(columns=OPEN_COLUMNS)
    p, tiers = _probabilities(blueprint, open_deals)
    frame = pd.DataFrame(
        {
            "segment": _segments(study, open_deals).to_numpy(),
            "tier": np.asarray(tiers.astype(str), dtype=object),
            "p": p,
        }
    )
    rows = []
    for split in (["segment"], ["tier"], []):
        groups = frame.groupby(split, sort=True) if split else [((), frame)]
        for values, part in groups:
            values = values if isinstance(values, tuple) else (values,)
            row = {"segment": "all", "tier": "all"} | dict(zip(split, values, strict=True))
            rows.append(
                row
                | {
                    "open_deals": len(part),
                    "expected_wins": float(part["p"].sum()),
                    "mean_probability": float(part["p"].mean()),
                }
            )
    return pd.DataFrame(rows, columns=OPEN_COLUMNS)


def pipeline_tables(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(closed, open)``: the blueprint's ``expected_pipeline`` table (``kind`` closed / open)
    as the report's two tables, in words."""
    from icp_research.formatting import fmt_number

    if table is None or table.empty:
        return pd.DataFrame(), pd.DataFrame()
    backtest = table[table["kind"] == "closed"]
    open_now = table[table["kind"] == "open"]

    def ratio(row) -> str:
        if not np.isfinite(row.observed_expected):
            return "–"
        return f"{row.observed_expected:.2f} ({row.ci_low:.2f}–{row.ci_high:.2f})"

    shown = pd.DataFrame(
        {
            "quarter": backtest["quarter"],
            "segment": backtest["segment"],
            "tier": backtest["tier"],
            "closed deals": [fmt_number(v) for v in backtest["deals"]],
            "expected wins": [f"{v:,.1f}" for v in backtest["expected"]],
            "won": [fmt_number(v) for v in backtest["won"]],
            "won / expected (95% CI)": [ratio(r) for r in backtest.itertuples()],
        }
    )
    now = pd.DataFrame(
        {
            "segment": open_now["segment"],
            "tier": open_now["tier"],
            "open deals": [fmt_number(v) for v in open_now["deals"]],
            "expected wins": [f"{v:,.1f}" for v in open_now["expected"]],
            "mean win probability": [
                f"{e / n:.0%}" if n else "–"
                for e, n in zip(open_now["expected"], open_now["deals"], strict=True)
            ],
        }
    )
    return shown.reset_index(drop=True), now.reset_index(drop=True)
