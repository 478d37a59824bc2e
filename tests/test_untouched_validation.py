"""Issue 17.1: nothing is chosen on the quarters the ICP is validated on.

The blueprint discovers on the earliest period, confirms on the middle quarters and validates on
the latest ones; what happens in the latest quarters cannot change what was chosen, only how
well it is shown to work. The backtest redoes the selection in every fold.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from icp_research.analyses import blueprint as bp
from icp_research.analyses.blueprint.validation import walk_forward_backtest

from .studies import make_study
from .test_blueprint import blueprint_tables


def _tables(seed: int = 11) -> dict:
    return blueprint_tables(np.random.default_rng(seed), n=1500, signal=True)


def _build(tables: dict):
    study = make_study(tables, categorical=["industry", "color"], numeric=["employees"])
    return study, bp.build_blueprint(study, backtest_quarters=0, n_boot=50)


@pytest.fixture(scope="module")
def original_and_flipped():
    tables = _tables()
    study, original = _build(tables)
    start = pd.Timestamp(original.params["periods"]["validated_on"]["start"])
    flipped = {name: frame.copy() for name, frame in tables.items()}
    deals = flipped["opportunities"]
    late = deals["closed_at"] >= start
    deals.loc[late, "stage"] = deals.loc[late, "stage"].map({"won": "lost", "lost": "won"})
    _, changed = _build(flipped)
    return study, original, changed, int(late.sum())


def _chosen(result) -> dict:
    # A score that ranks the validation quarters backwards is withheld, not changed: what
    # was fitted is compared.
    scorecard = result.scorecard or result.withheld_scorecard
    return {
        "characteristics": [c["attribute"] for c in result.characteristics],
        "include": [r.text for r in result.include],
        "exclude": [r.text for r in result.exclude],
        "uncertain": [r.text for r in result.uncertain],
        "statement": result.statement,
        "scorecard": scorecard.table().to_dict("records") if scorecard else None,
        "tiers": scorecard.tiers if scorecard else None,
    }


def test_outcomes_in_the_validation_quarters_change_nothing_that_was_chosen(original_and_flipped):
    _, original, changed, flipped = original_and_flipped
    assert flipped > 100, "the validation quarters hold deals to flip"
    assert original.drawn and original.scorecard is not None
    assert _chosen(changed) == _chosen(original)
    # ... but the validation sees the flip: the same rows, the opposite outcomes.
    before, after = original.validation, changed.validation
    assert before.n == after.n
    assert before.events + after.events == before.n
    assert before.auc > 0.55 and after.auc < 0.45
    # The flipped quarters rank the score backwards: it is fitted as before, but not shipped.
    assert changed.scorecard is None and changed.withheld_scorecard is not None
    assert any("ranked the" in c and "backwards" in c for c in changed.caveats)


def test_icp_json_says_what_it_was_chosen_and_validated_on(original_and_flipped):
    study, original, _, _ = original_and_flipped
    document = json.loads(json.dumps(original.to_json()))
    validation = document["validation"]
    selected, validated = validation["selected_on"], validation["validated_on"]
    for span in (selected, validated):
        assert set(span) == {"start", "end"}
        assert pd.Timestamp(span["start"]) <= pd.Timestamp(span["end"])
    assert pd.Timestamp(selected["end"]) < pd.Timestamp(validated["start"])
    assert pd.Timestamp(validated["start"]) - pd.Timestamp(selected["end"]) == pd.Timedelta(days=1)
    assert validated["end"] == study.as_of.strftime("%Y-%m-%d") == "2026-06-30"
    assert validated["start"] == "2026-01-01"  # the latest two quarters
    assert validation["confirmed_on"] == {"start": "2025-07-01", "end": "2025-12-31"}
    assert validation["holdout_n"] == original.outcome["n_validation"]
    assert "2026-01-01 to 2026-06-30" in original.periods_text()


def test_the_backtest_redoes_the_selection_in_every_fold():
    study = make_study(_tables(5), categorical=["industry", "color"], numeric=["employees"])
    _, result = _build(_tables(5))
    seen = []

    def select(past):
        seen.append(past.as_of.strftime("%Y-%m-%d"))
        # What each fold may use: only what its own data chose (here: a fixed, known answer
        # per fold, so that the test can tell where the fold's attributes came from).
        return (["industry"], []) if len(seen) == 1 else ([], ["employees"])

    tiers = bp.tier_spec(None, study)
    _, quarters, notes = walk_forward_backtest(
        study, result.scorecard, "won", 3, tiers, 0.05, select=select
    )
    assert seen == ["2025-09-30", "2025-12-31", "2026-03-31"]
    assert list(quarters["quarter"]) == ["2025Q4", "2026Q1", "2026Q2"]
    assert list(quarters["attributes"]) == ["industry", "employees", "employees"]

    def nothing(past):
        return [], []

    _, quarters, notes = walk_forward_backtest(
        study, result.scorecard, "won", 2, tiers, 0.05, select=nothing
    )
    assert quarters.empty
    assert len(notes) == 2 and all("no attribute held up" in n for n in notes)
