"""The churn report's Cox model is pre-specified, not a second test of the log-rank winners.

Fitting the Cox model on the attributes whose log-rank tests came out significant re-tests the
winners on the same data: on data where nothing affects churn the model is rarely shown, but
whenever it is, its hazard ratios "confirm" the selection. A model declared before looking at
churn is fitted on every dataset, and its terms (BH-corrected over the model) come out
significant about as often as alpha says.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from icp_research.analyses import churn

from .studies import AS_OF, DAYS_PER_MONTH, make_study

SEEDS = range(30)


def _null_study(seed: int, n: int = 200):
    """Customers with three three-level attributes, none of which affects churn."""
    rng = np.random.default_rng(seed)
    ids = [f"A{i:04d}" for i in range(n)]
    attributes = {f"a{j}": rng.choice(["x", "y", "z"], n) for j in range(3)}
    start = AS_OF - pd.to_timedelta(rng.uniform(30, 730, n).round(), unit="D")
    months = rng.exponential(1 / 0.04, n)
    churn_at = start + pd.to_timedelta((months * DAYS_PER_MONTH).round(), unit="D")
    churned = np.asarray(churn_at <= AS_OF)
    accounts = pd.DataFrame(
        {"account_id": ids, **attributes, "created_at": start - pd.Timedelta(days=60)}
    )
    subscriptions = pd.DataFrame(
        {
            "account_id": ids,
            "start_date": start,
            "end_date": pd.Series(churn_at).where(churned, pd.NaT),
            "arr": 1000.0,
            "plan": "Pro",
        }
    )
    tables = {"accounts": accounts, "subscriptions": subscriptions}
    return make_study(tables, categorical=list(attributes))


@pytest.fixture(scope="module")
def null_models():
    return [churn.churn_analysis(_null_study(seed)).cox for seed in SEEDS]


def test_null_cox_terms_are_significant_about_as_often_as_alpha(null_models):
    fitted = [m for m in null_models if len(m.summary)]
    significant = [bool(m.summary["significant"].astype(bool).any()) for m in fitted]
    # The model does not wait for the log-rank tests: it is fitted on (almost) every dataset.
    assert len(fitted) >= 0.9 * len(null_models)
    # Any significant term, over all datasets and over the datasets where the model is shown:
    # near alpha, not "whenever a model is shown, it confirms" (the model on the log-rank
    # winners was shown on 1 of these 30 datasets and had significant terms on that 1).
    assert sum(significant) / len(null_models) <= 0.10
    assert sum(significant) / len(fitted) <= 0.15


def test_null_cox_model_holds_the_declared_attributes(null_models):
    covariates = {tuple(sorted(set(m.summary["covariate"]))) for m in null_models if len(m.summary)}
    assert covariates == {("a0", "a1", "a2")}
    said = " ".join(null_models[0].caveats)
    assert "pre-specified" in said and "Benjamini-Hochberg" in said
