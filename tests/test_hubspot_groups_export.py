"""The HubSpot-groups fixture (tests/fixtures/exports/hubspot_groups): subsidiaries of three
enterprise groups that won nearly every deal, companies recorded twice, and a multi-select
"Technologies" column with a planted effect (Snowflake users win about twice as often).

Before this shape was handled, the groups' parent-company id became the ICP ("parent company
under inf"), Aerospace was a 33x predictor and a significant subgroup (q = 3.5e-39), and the
technologies were one label per combination, so Snowflake could not be found.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import icp_research as icp

CONFIG = Path(__file__).parent / "fixtures" / "exports" / "hubspot_groups" / "icp.toml"


@pytest.fixture(scope="module")
def study():
    return icp.open_study(CONFIG, reuse_snapshot=False)


def test_the_groups_the_duplicates_and_the_technologies_are_read(study):
    column, head = study.account_groups
    assert column == "parent_company" and len(head) == 63
    warnings = {p.column: p.message for p in study.report.warnings}
    assert warnings["Parent Company"].startswith("60 accounts name another account here (3 parents")
    assert warnings["Company Domain Name"].startswith("40 domains are shared by 80 account records")
    flags = [a for a in study.attributes.categorical if a.startswith("technologies: ")]
    assert len(flags) == 8 and "technologies: Snowflake" in flags
    assert "parent_company" in study.attributes.excluded


def test_the_icp_is_snowflake_not_the_groups(study):
    from icp_research.analyses import blueprint as bp
    from icp_research.analyses.significance import predictor_significance

    result = predictor_significance(study)
    recommended = {r["predictor"] for r in result.recommended}
    assert "industry" not in recommended and "parent_company" not in recommended
    blueprint = bp.build_blueprint(study, backtest_quarters=1, n_boot=100)
    texts = [rule.text for rule in blueprint.include]
    assert not any("Aerospace" in t or "parent" in t for t in texts)
    assert any("Snowflake" in t for t in texts), texts
