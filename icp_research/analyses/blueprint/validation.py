"""The fit score: tiers, the scorecard fitted on the training period, its holdout validation,
ICP vs the rest, and the walk-forward backtest."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from icp_research.analyses.blueprint.evidence import compare
from icp_research.analyses.blueprint.samples import OUTCOMES, Sample
from icp_research.analyses.blueprint.upstream import Upstream
from icp_research.data.loading import return_memory
from icp_research.data.study import Study
from icp_research.errors import InputError, NotEnoughData
from icp_research.methods.stats import proportion_ci, ratio_ci


def tier_spec(tiers, study: Study) -> dict:
    """How tiers are cut: ``{"fixed": [(name, min_score), ...]}`` or ``{"shares": [...],
    "names": [...]}``.

    ``tiers`` is None (the config's ``[scoring] tiers``), a mapping ``{"Tier 1": 70, ...}`` or a
    list of ``(name, min_score)`` pairs (fixed cut-offs, best first, the last at 0), or
    ``"shares"`` / a list of shares such as ``[0.2, 0.3, 0.5]`` (cut-offs that split the
    training rows into those shares).
    """
    from icp_research.scoring.scorecard import DEFAULT_TIERS

    if tiers is None or (isinstance(tiers, str) and tiers.strip() in ("", "config")):
        tiers = dict(study.config.scoring.get("tiers") or {})
    if isinstance(tiers, str):
        text = tiers.strip()
        if text == "shares":
            return {"shares": [0.2, 0.3, 0.5], "names": list(DEFAULT_TIERS)}
        try:
            tiers = json.loads(text)
        except ValueError:
            raise InputError(
                f"tiers = {tiers!r}: give a mapping such as "
                '{"Tier 1": 70, "Tier 2": 40, "Tier 3": 0}, or "shares"'
            ) from None
    if isinstance(tiers, Mapping):
        pairs = [(str(k), float(v)) for k, v in tiers.items()]
    else:
        items = list(tiers)
        if items and all(isinstance(v, int | float) for v in items):
            shares = [float(v) for v in items]
            if any(s <= 0 for s in shares) or abs(sum(shares) - 1) > 1e-6:
                raise InputError(f"tier shares {shares} must be positive and add up to 1")
            names = [f"Tier {i + 1}" for i in range(len(shares))]
            return {"shares": shares, "names": names}
        pairs = [(str(name), float(value)) for name, value in items]
    pairs.sort(key=lambda pair: -pair[1])
    if not pairs or pairs[-1][1] != 0:
        raise InputError(
            f"tiers {dict(pairs)}: the last tier must start at 0 so that every lead gets a tier"
        )
    if any(v > 100 or v < 0 for _, v in pairs):
        raise InputError(f"tiers {dict(pairs)}: minimum scores must be between 0 and 100")
    return {"fixed": pairs}


def _fit_kwargs(spec: dict) -> dict:
    if "fixed" in spec:
        return {"tiers": spec["fixed"]}
    return {"tier_shares": spec["shares"], "tier_names": spec["names"]}


def score_attributes(characteristics, upstream: Upstream, study: Study) -> tuple[list, list]:
    """The scorecard's candidate attributes: the characteristics, plus predictors that held up
    for a yes/no outcome but were not shortlisted (the fit decides whether they add)."""
    names = [c["attribute"] for c in characteristics]
    summary = upstream.predictor_summary
    if summary is not None and len(summary) and {"replicated", "outcome"} <= set(summary):
        extra = summary[summary["replicated"] & summary["outcome"].isin(OUTCOMES)]
        names += [p for p in extra["predictor"] if p not in names]
    spec = study.attributes
    categorical = [n for n in dict.fromkeys(names) if n in spec.categorical]
    numeric = [n for n in dict.fromkeys(names) if n in spec.numeric]
    return categorical, numeric


def _value_column(sample: Sample) -> str | None:
    for column in ("amount", "arr_initial"):
        if column in sample.holdout.columns and sample.holdout[column].notna().any():
            return column
    return None


def select_score_attributes(study: Study) -> tuple[list, list]:
    """The whole selection of the score's attributes on ``study`` alone: every predictor that
    held up for a yes/no outcome in the predictor significance (discovery, then confirmation
    on its latest quarters), contract terms dropped for best-customer status. That is the same
    set :func:`score_attributes` gives (the recommended characteristics are among them), so the
    multivariable check that only orders them is skipped. Returns ``(categorical, numeric)``."""
    from icp_research.analyses.blueprint.rules import defining_characteristics
    from icp_research.analyses.blueprint.upstream import drop_contract_evidence, significance_only

    upstream = significance_only(study, model=False)
    drop_contract_evidence(upstream, study)
    spec = study.attributes
    attributes = [a for a in [*spec.categorical, *spec.numeric] if a in study.facts.columns]
    characteristics = defining_characteristics(upstream, attributes)
    return score_attributes(characteristics, upstream, study)


def walk_forward_backtest(
    study: Study,
    scorecard,
    outcome: str,
    quarters: int,
    spec: dict,
    alpha: float,
    select=select_score_attributes,
):
    """Walk-forward backtest: per recent quarter, the selection of the score's attributes
    (``select(study as of the quarter's start)``: made on data before the quarter; None keeps
    the scorecard's attributes) and the score fitted on what was known at the quarter's start,
    score the accounts known then, compare with what happened in the quarter. Nothing chosen
    on the quarter scores it.

    Returns ``(per tier and quarter, per quarter, notes)``.
    """
    from icp_research.analyses.significance import outcome_frames
    from icp_research.scoring.scorecard import auc_ci, fit_scorecard

    tier_rows, quarter_rows, notes = [], [], []
    if outcome not in ("won", "retained") or quarters <= 0:
        notes.append(
            f"No backtest for {outcome}: it is not an event that happens within a quarter."
        )
        return pd.DataFrame(), pd.DataFrame(), notes
    categorical = list(scorecard.params.get("categorical", []))
    numeric = list(scorecard.params.get("numeric", []))
    last = pd.Period(study.as_of, "Q")
    if last.end_time.normalize() > study.as_of:
        last -= 1  # the current quarter is not over
    deals = study.deals
    past, kept = None, set()
    for offset in range(quarters - 1, -1, -1):
        # The last quarter's study and frames go before this one's are built (at 10M deals
        # each is gigabytes), and what they held goes back to the system. A study that
        # outlives its fold (the caller's, of the same date) forgets what the fold computed.
        if past is not None:
            past.forget(*(set(past.__dict__) - kept))
        past = frame = fitted = facts = population = None
        return_memory()
        quarter = last - offset
        start, end = quarter.start_time, quarter.end_time.normalize()
        scored_as_of = start - pd.Timedelta(days=1)
        past = study.at(scored_as_of)
        kept = set(past.__dict__)
        if select is not None:
            categorical, numeric = select(past)
            if not categorical and not numeric:
                notes.append(
                    f"{quarter}: not backtested (on what was known on {scored_as_of:%Y-%m-%d}, "
                    "no attribute held up, so there was no score to test)."
                )
                continue
        frame = outcome_frames(
            past, outcomes=[outcome], predictors=categorical + numeric, holdout_quarters=0
        )[0]
        if frame.skipped:
            notes.append(f"{quarter}: not backtested ({frame.skipped} on {scored_as_of:%Y-%m-%d}).")
            continue
        try:
            fitted = fit_scorecard(
                frame.data,
                outcome,
                categorical=categorical,
                numeric=numeric,
                alpha=alpha,
                cluster=frame.cluster if frame.cluster in frame.data.columns else None,
                min_level_count=int(study.analysis.get("min_level_count", 10)),
                **_fit_kwargs(spec),
            )
        except (NotEnoughData, InputError) as error:
            notes.append(f"{quarter}: not backtested ({error}).")
            continue
        facts = past.facts
        customer = facts["is_customer"].fillna(False).astype(bool)
        if outcome == "won":
            population = facts[~customer]
            closed = pd.to_datetime(deals["closed_at"])
            won = deals.loc[
                deals["is_new_business"].astype(bool)
                & deals["won"].fillna(False).astype(bool)
                & (closed >= start)
                & (closed <= end),
                [c for c in ("account_id", "amount") if c in deals],
            ]
            value_by_account = (
                won.groupby("account_id")["amount"].sum() if "amount" in won else None
            )
            y = population["account_id"].isin(won["account_id"].unique()).to_numpy()
            value = (
                population["account_id"].map(value_by_account).fillna(0).to_numpy(float)
                if value_by_account is not None
                else np.zeros(len(population))
            )
            event_words = "won a new-business deal"
        else:
            churned = facts["churned"].fillna(False).astype(bool)
            # Customers whose churn is unknown (then or now) cannot be seen to stay.
            unknown = study.facts.loc[study.facts["churned"].isna(), "account_id"]
            population = facts[
                customer & ~churned & facts["churned"].notna() & ~facts["account_id"].isin(unknown)
            ]
            churns = study.facts.set_index("account_id")["churned_at"]
            when = pd.to_datetime(population["account_id"].map(churns))
            y = ~((when >= start) & (when <= end)).to_numpy()
            value = np.zeros(len(population))
            event_words = "stayed"
        if population.empty:
            notes.append(f"{quarter}: no accounts to score on {scored_as_of:%Y-%m-%d}.")
            continue
        scores = fitted.score(population, reasons=False)["fit_score"].to_numpy()
        tier_codes = np.asarray(fitted.tier_of(scores).codes)
        names = [n for n, _ in fitted.tiers]
        for code, name in enumerate(names):
            members = tier_codes == code
            n, k = int(members.sum()), int(y[members].sum())
            low, high = proportion_ci(k, n, alpha) if n else (np.nan, np.nan)
            tier_rows.append(
                {
                    "quarter": str(quarter),
                    "scored_as_of": scored_as_of.strftime("%Y-%m-%d"),
                    "tier": name,
                    "n": n,
                    "events": k,
                    "rate": k / n if n else np.nan,
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "value": float(value[members].sum()),
                }
            )
        top, bottom = tier_codes == 0, tier_codes == len(names) - 1
        ratio = low_r = high_r = np.nan
        if top.any() and bottom.any() and y[bottom].sum() + y[top].sum() > 0:
            ratio, low_r, high_r = (
                float(v) for v in ratio_ci(y[top].sum(), top.sum(), y[bottom].sum(), bottom.sum())
            )
        auc_value, auc_low, auc_high = auc_ci(scores, y.astype(float), alpha=alpha)
        quarter_rows.append(
            {
                "quarter": str(quarter),
                "scored_as_of": scored_as_of.strftime("%Y-%m-%d"),
                "n": int(len(population)),
                "events": int(y.sum()),
                "event": event_words,
                "trained_on": int(fitted.training.get("n", 0)),
                "attributes": ", ".join(a.name for a in fitted.attributes),
                "auc": auc_value,
                "auc_low": auc_low,
                "auc_high": auc_high,
                "top_vs_bottom": ratio,
                "top_vs_bottom_low": low_r,
                "top_vs_bottom_high": high_r,
            }
        )
    if past is not None:
        past.forget(*(set(past.__dict__) - kept))
    past = frame = fitted = facts = population = None
    return_memory()
    return pd.DataFrame(tier_rows), pd.DataFrame(quarter_rows), notes


def measure_icp_vs_rest(samples: dict, spec: dict, alpha: float) -> list[dict]:
    """Accounts meeting every defining include rule and no exclude rule vs the rest, on the
    holdout of each outcome measured."""
    from icp_research.scoring.model import rule_columns

    out = []
    for name in ("won", "retained", "best_customer", "churn", "no_decision"):
        sample = samples.get(name)
        if sample is None or sample.holdout.empty:
            continue
        in_icp = rule_columns(sample.holdout, spec)["in_icp"].to_numpy()
        measured = compare(sample, sample.holdout, in_icp, ~in_icp, alpha)
        out.append(
            {
                "outcome": name,
                "unit": sample.unit,
                "rate_unit": "per customer-year" if sample.kind == "churn" else "share",
                "n_icp": measured["n"],
                "rate_icp": measured["rate_in"],
                "n_rest": measured["n_rest"],
                "rate_rest": measured["rate_out"],
                "ratio": measured["lift"],
                "ci_low": measured["ci_low"],
                "ci_high": measured["ci_high"],
                "p_value": measured["p_value"],
            }
        )
    return out


def _bounded_by_rules(blueprint) -> dict[str, list[float]]:
    """``{attribute: [low, high]}`` for each attribute an include rule bounds on both sides:
    the score cuts its bins there too and keeps them as they are rather than forcing them
    monotone, and so does not contradict the ICP (a trend test over all sizes can miss a fall
    past the range the rule found and confirmed)."""
    return {
        condition.attribute: [float(v) for v in condition.value]
        for rule in blueprint.include
        for condition in rule.conditions
        if condition.operator == "between"
    }


def fit_and_validate(
    blueprint, study, checks, primary, categorical, numeric, tiers_used, alpha, n_boot, caveats
):
    """Fit the scorecard on ``primary``'s training rows (the discovery period) and validate it
    on the validation period: ``checks``, the samples of the full study whose holdout is the
    latest quarters, on which nothing was chosen."""
    from icp_research.scoring.scorecard import fit_scorecard, validate_scorecard

    outcome = primary.outcome
    try:
        scorecard = fit_scorecard(
            primary.training,
            outcome,
            categorical=categorical,
            numeric=numeric,
            alpha=alpha,
            rule_edges=_bounded_by_rules(blueprint),
            cluster=primary.cluster if primary.clustered else None,
            min_level_count=int(study.analysis.get("min_level_count", 10)),
            **_fit_kwargs(tiers_used),
        )
    except (NotEnoughData, InputError) as error:
        caveats.append(f"No fit score: {error}")
        blueprint.params["score_error"] = str(error)
        return
    blueprint.scorecard = scorecard
    seed = int(study.analysis.get("seed", 0))
    check = checks.get(outcome)
    if check is None or check.holdout.empty:
        blueprint.params["validation_error"] = "the validation period (latest quarters) has no rows"
        return
    blueprint.validation = validate_scorecard(
        scorecard,
        check.holdout,
        outcome,
        value=_value_column(check),
        cluster=primary.cluster if primary.clustered else None,
        unit=primary.unit,
        alpha=alpha,
        n_boot=n_boot,
        seed=seed,
    )
    v = blueprint.validation
    if v.n and np.isfinite(v.auc) and v.auc < 0.5:
        # Worse than chance on the quarters nothing was chosen on: points that send sales to
        # the worse accounts are not shipped (the rules still mark accounts in or out).
        reason = (
            f"on the validation quarters, on which nothing was chosen, it ranked the "
            f"{v.n:,} {primary.unit} backwards (AUC {v.auc:.2f}, 95% CI {v.auc_low:.2f}–"
            f"{v.auc_high:.2f}; 0.50 is chance), so its points would send sales to the worse "
            "accounts"
        )
        caveats.append(
            f"No fit score: {reason}; the rules still mark accounts in or out (score with "
            "--rules-only)."
        )
        blueprint.params["score_error"] = reason
        blueprint.withheld_scorecard, blueprint.scorecard = scorecard, None
        return
    retained = checks.get("retained")
    if outcome != "retained" and retained is not None and not retained.holdout.empty:
        blueprint.retention = validate_scorecard(
            scorecard,
            retained.holdout,
            "retained",
            unit="customers",
            alpha=alpha,
            n_boot=n_boot,
            seed=seed,
        )
