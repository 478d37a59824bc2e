"""[analysis] churn_source: churn from subscriptions, churn events or an accounts column.

The fixture ``tests/fixtures/exports/saas_churn`` is shaped like a real SaaS export whose records
disagree: every account still has an open subscription, most have churn events (some flagged
as reactivations) and the accounts carry a hand-kept ``churn_flag``. Every count below is also
computed by hand from the CSVs with plain pandas.
"""

from __future__ import annotations

import copy
import dataclasses

import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import churn, overview
from icp_research.data.churn_source import column_status
from icp_research.data.config import config_from_dict, load_config
from icp_research.data.loading import load_tables
from icp_research.data.study import Study
from icp_research.data.validation import validate
from icp_research.errors import ConfigError

from .conftest import FIXTURES
from .studies import make_study

FOLDER = FIXTURES / "exports" / "saas_churn"
CONFIG = FOLDER / "icp.toml"
AS_OF = pd.Timestamp("2025-12-31")
MID = pd.Timestamp("2025-06-30")


# ---------------------------------------------------------------------------------------------
# The hand count: plain pandas on the CSVs


@pytest.fixture(scope="module")
def csv():
    accounts = pd.read_csv(FOLDER / "accounts.csv")
    subs = pd.read_csv(FOLDER / "subscriptions.csv", parse_dates=["start_date", "end_date"])
    events = pd.read_csv(FOLDER / "churn_events.csv", parse_dates=["churn_date"])
    return accounts, subs, events


def hand_count(csv, as_of: pd.Timestamp) -> dict:
    """Churned accounts under each source, by hand, as of ``as_of``."""
    accounts, subs, events = csv
    subs = subs[subs["start_date"] <= as_of]
    running = subs[subs["end_date"].isna() | (subs["end_date"] > as_of)]
    paying = set(running.groupby("account_id")["mrr_amount"].sum().loc[lambda m: m > 0].index)
    customers = set(subs["account_id"])
    ended = customers - paying

    known = events[events["churn_date"] <= as_of]
    churns = known[~known["is_reactivation"]]
    flagged = known[known["is_reactivation"]]
    last_churn = churns.groupby("account_id")["churn_date"].max()
    returns = pd.concat(
        [
            flagged.set_index("account_id")["churn_date"],
            subs.set_index("account_id")["start_date"],
        ]
    )
    last_return = returns.groupby(level=0).max().reindex(last_churn.index)
    by_events = set(last_churn.index[~(last_return > last_churn)]) & customers

    flag = set(accounts.loc[accounts["churn_flag"], "account_id"]) & customers
    later = set(
        events.loc[~events["is_reactivation"] & (events["churn_date"] > as_of), "account_id"]
    )
    later |= set(csv[1].loc[csv[1]["end_date"] > as_of, "account_id"])
    dated = set(last_churn.index) | ended
    by_flag = {a for a in flag if a in dated or a not in later}
    return {
        "customers": len(customers),
        "subscriptions": ended,
        "churn_events": by_events,
        "churn_flag": by_flag,
        "undated": {a for a in by_flag if a not in dated},
        "contradicted": by_events & paying,
    }


def hand_reactivations(csv, as_of: pd.Timestamp) -> tuple[int, int]:
    """Churns followed by a return, and the accounts that came back, walking each account's
    records in date order (a return on the day of a churn does not end it)."""
    _, subs, events = csv
    records = []
    for row in events[events["churn_date"] <= as_of].itertuples():
        records.append((row.account_id, row.churn_date, 0 if row.is_reactivation else 1))
    for row in subs[subs["start_date"] <= as_of].itertuples():
        records.append((row.account_id, row.start_date, 0))
    count, accounts = 0, set()
    by_account: dict[str, list] = {}
    for account, _date, kind in sorted(records):
        by_account.setdefault(account, []).append(kind)
    for account, kinds in by_account.items():
        for before, after in zip(kinds, kinds[1:], strict=False):
            if before == 1 and after == 0:
                count += 1
                accounts.add(account)
    return count, len(accounts)


# ---------------------------------------------------------------------------------------------
# The kit's count under each setting


@pytest.fixture(scope="module")
def dataset():
    return load_tables(CONFIG)


def study_with(dataset, source: str, as_of=AS_OF) -> Study:
    config = copy.deepcopy(dataset.config)
    config.analysis["churn_source"] = source
    return Study(dataclasses.replace(dataset, config=config), as_of)


def churned_ids(study: Study) -> set:
    facts = study.facts
    return set(facts.loc[facts["churned"].fillna(False).astype(bool), "account_id"])


@pytest.mark.parametrize(
    ("setting", "used", "expected"),
    [
        ("subscriptions", "subscriptions", 0),
        ("churn_events", "churn_events", 81),
        ("churn_flag", "churn_flag", 54),
        ("auto", "churn_events", 81),
    ],
)
def test_each_source_counts_what_a_hand_count_gives(dataset, csv, setting, used, expected):
    hand = hand_count(csv, AS_OF)
    study = study_with(dataset, setting)
    facts = study.facts
    assert churned_ids(study) == hand[used]
    assert len(hand[used]) == expected
    assert facts.attrs["churn_source"] == used
    assert facts.attrs["churn_counts"]["churned"] == expected
    assert facts.attrs["churn_counts"]["customers"] == hand["customers"] == 240
    result = overview.data_overview(study)
    share = result.totals["churned_share"]
    assert (share["churned"], share["customers"]) == (expected, 240)
    assert share["share"] == pytest.approx(expected / 240)
    label = {"subscriptions": "from subscriptions", "churn_events": "from churn events"}
    assert result.headline["Churn / year"].endswith(label.get(used, f"from {used}"))


def test_a_flag_without_a_date_counts_in_the_share_not_in_the_rate(dataset, csv):
    hand = hand_count(csv, AS_OF)
    study = study_with(dataset, "churn_flag")
    facts = study.facts
    undated = set(
        facts.loc[facts["churned"].fillna(False) & facts["churned_at"].isna(), "account_id"]
    )
    assert undated == hand["undated"] and len(undated) == 8
    assert facts.attrs["churn_counts"]["undated"] == 8
    result = churn.churn_analysis(study)
    assert result.overall["churned"] == 54 - 8  # the survival analysis: dated churn only
    assert result.overall["churned_all"] == 54
    assert result.overall["undated"] == 8
    assert any(
        "8 customers that churn_flag says churned have no churn event" in c for c in result.caveats
    )
    assert churn.headline(result)["Churned, incl. undated"] == "54 of 240 (22%)"
    totals = overview.data_overview(study).totals
    assert totals["annual_churn_rate"]["events"] == 46
    assert totals["churned_share"]["undated"] == 8


@pytest.mark.parametrize("setting", ["churn_events", "churn_flag", "subscriptions"])
def test_an_earlier_as_of_date_counts_only_what_happened_by_then(dataset, csv, setting):
    hand = hand_count(csv, MID)
    study = study_with(dataset, setting, MID)
    assert churned_ids(study) == hand[setting]
    assert study.facts.attrs["churn_counts"]["customers"] == hand["customers"]


def test_auto_decides_on_all_the_data_so_quarters_agree(dataset):
    assert study_with(dataset, "auto", MID).facts.attrs["churn_source"] == "churn_events"


def test_reactivations_are_counted_and_end_the_churn(dataset, csv):
    count, accounts = hand_reactivations(csv, AS_OF)
    assert (count, accounts) == (39, 38)
    facts = study_with(dataset, "churn_events").facts
    counts = facts.attrs["churn_counts"]
    assert counts["reactivations"] == count
    assert counts["reactivated_accounts"] == accounts
    assert counts["reactivation_events"] == int(csv[2]["is_reactivation"].sum()) == 17
    assert int(facts["reactivations"].sum()) == count
    # An account whose latest record is a reactivation-flagged event is not churned.
    events = csv[2].sort_values("churn_date")
    latest = events.groupby("account_id").tail(1)
    back = latest.loc[latest["is_reactivation"], "account_id"]
    assert len(back) > 0
    assert not facts.set_index("account_id").loc[back, "churned"].any()


def test_validate_says_how_many_which_way_and_the_setting(tmp_path):
    report = validate(CONFIG)
    assert report.ok
    warnings = [p.line() for p in report.warnings if p.table == "churn_events"]
    assert (
        "churn_events.csv: 81 accounts have an active subscription on 2025-12-31 but a churn "
        "event not followed by a return; churn counted from churn events, so they count as "
        'churned; set churn_source = "subscriptions" to measure churn from subscriptions'
    ) in warnings
    assert (
        "churn_events.csv: the accounts column churn_flag says 54 customers churned; churn "
        'counted from churn events counts 81 (41 in both); set churn_source = "churn_flag" to '
        "take churn from the column"
    ) in warnings
    notes = [p.message for p in report.infos]
    assert any(n.startswith("39 churns were followed by a return") for n in notes)

    text = CONFIG.read_text(encoding="utf-8").replace(
        'churn_source = "auto"', 'churn_source = "subscriptions"'
    )
    for name in ("accounts.csv", "subscriptions.csv", "churn_events.csv"):
        (tmp_path / name).write_bytes((FOLDER / name).read_bytes())
    (tmp_path / "icp.toml").write_text(text, encoding="utf-8")
    from icp_research.cli import main

    assert main(["validate", "--config", str(tmp_path / "icp.toml")]) == 0
    lines = [p.line() for p in validate(tmp_path / "icp.toml").warnings]
    assert (
        "churn_events.csv: 81 accounts have churn events but an active subscription on "
        '2025-12-31; churn measured from subscriptions; set churn_source = "churn_events" to '
        "count the events"
    ) in lines


def test_churn_report_says_its_source(dataset):
    result = churn.churn_analysis(study_with(dataset, "auto"))
    assert "churn counted from churn events" in result.findings[0]
    kpis = churn.headline(result)
    assert kpis["Churn measured"] == "from churn events"
    assert kpis["Churn / year"].endswith("from churn events")
    assert result.params["churn_source"] == "churn_events"
    nothing = churn.churn_analysis(study_with(dataset, "subscriptions"))
    assert nothing.overall["churned"] == 0
    assert any(
        'set churn_source = "churn_events" to count the events' in c for c in nothing.caveats
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("churn_event", "did you mean 'churn_events'?"),
        ("Subscription", "did you mean 'subscriptions'?"),
        (3, "must be text in quotes"),
        ("", "must be text in quotes"),
    ],
)
def test_a_bad_setting_is_a_config_error(value, message):
    raw = {"tables": {"accounts": {"path": "a.csv"}}, "analysis": {"churn_source": value}}
    with pytest.raises(ConfigError) as error:
        config_from_dict(raw)
    assert "[analysis] churn_source" in str(error.value)
    assert message in str(error.value)


def test_an_unknown_or_unusable_column_is_a_validation_error():
    config = load_config(CONFIG)
    config.analysis["churn_source"] = "churn_flags"
    errors = validate(config).lines("error")
    assert errors == [
        'accounts.csv: [analysis] churn_source = "churn_flags" is not auto, subscriptions, '
        "churn_events or a column of accounts; fix: did you mean 'churn_flag'? set churn_source "
        "to one of those in the config"
    ]
    config.analysis["churn_source"] = "industry"
    errors = validate(config).lines("error")
    assert len(errors) == 1 and "column industry holds neither churned flags" in errors[0]


def test_status_words_and_flags_are_read():
    status = column_status(pd.Series(["Churned", "Active", "active", "Inactive", None, "Paused"]))
    assert status.tolist()[:4] == [True, False, False, True]
    assert status.isna().tolist()[4:] == [True, True]
    assert column_status(pd.Series([1.0, 0.0, None])).tolist()[:2] == [True, False]
    assert column_status(pd.Series(["SaaS", "Retail"])) is None
    # German and French statuses; a prospect is neither.
    german = column_status(pd.Series(["Aktiv", "Gekündigt", "Interessent", "Inaktiv"]))
    assert german.tolist()[:2] == [False, True] and german.isna().tolist()[2] and german[3]
    french = column_status(pd.Series(["Actif", "Résilié", "Inactif", "Prospect"]))
    assert french.tolist()[:3] == [False, True, True] and french.isna()[3]


def test_a_status_column_on_small_tables():
    T = pd.Timestamp
    accounts = pd.DataFrame(
        {"account_id": ["A", "B", "C", "D"], "status": ["Churned", "Active", "Churned", "Active"]}
    )
    subs = pd.DataFrame(
        {
            "account_id": ["A", "B", "C", "D"],
            "start_date": [T("2024-01-01")] * 4,
            "end_date": [pd.NaT, pd.NaT, T("2025-03-01"), T("2025-04-01")],
            "arr": [1000.0] * 4,
        }
    )
    tables = {"accounts": accounts, "subscriptions": subs}
    study = make_study(tables, as_of=T("2025-12-31"), analysis={"churn_source": "status"})
    facts = study.facts.set_index("account_id")
    # A: flagged, nothing dates it (undated); C: flagged, dated by its subscription end; D's
    # ended subscription does not count: the status says Active.
    assert facts["churned"].tolist() == [True, False, True, False]
    assert pd.isna(facts.loc["A", "churned_at"]) and facts.loc["C", "churned_at"] == T("2025-03-01")
    assert facts.attrs["churn_source"] == "status"


def test_the_demo_is_measured_from_subscriptions_without_disagreement():
    facts = icp.open_study().facts
    assert facts.attrs["churn_source"] == "subscriptions"
    assert facts.attrs["churn_notes"] == []
    assert int(facts["churned"].fillna(False).sum()) == 322


def test_a_source_without_its_table_is_a_warning():
    config = load_config(CONFIG)
    del config.tables["churn_events"]
    config.analysis["churn_source"] = "churn_events"
    report = validate(config)
    assert report.ok
    assert report.lines("warning")[0] == (
        'accounts.csv: [analysis] churn_source = "churn_events" but there is no churn_events '
        "table, so churn cannot be measured from it; fix: map [tables.churn_events] or set "
        'churn_source = "auto"'
    )


def test_churn_events_without_subscriptions_measure_churn_and_retention(tmp_path):
    """A CRM export with won deals and a churn list but no billing table: customers come from
    the won deals, churn from the events, so the overview's churn rate and the retention
    outcome are measured (only NRR, which needs ARR, is not)."""
    import numpy as np

    from icp_research.analyses.significance import outcome_frames

    from .conftest import write_project

    rng = np.random.default_rng(4)
    n = 120
    ids = [f"A{i:03d}" for i in range(n)]
    won = rng.random(n) < 0.7
    won_at = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 360, n), "D")
    churn = won & (rng.random(n) < 0.3)
    churn_at = won_at + pd.to_timedelta(rng.integers(30, 600, n), "D")
    accounts = "Account ID,Industry\n" + "".join(
        f"{a},{rng.choice(['SaaS', 'Retail'])}\n" for a in ids
    )
    deals = "Deal ID,Account ID,Stage,Created,Closed\n" + "".join(
        f"D{i},{a},{'Won' if w else 'Lost'},{(d - pd.Timedelta(days=20)):%Y-%m-%d},{d:%Y-%m-%d}\n"
        for i, (a, w, d) in enumerate(zip(ids, won, won_at, strict=True))
    )
    events = "Account ID,Churned\n" + "".join(
        f"{a},{d:%Y-%m-%d}\n" for a, c, d in zip(ids, churn, churn_at, strict=True) if c
    )
    path = write_project(
        tmp_path,
        {"accounts.csv": accounts, "deals.csv": deals, "churn.csv": events},
        '[project]\nas_of = "2025-06-30"\n'
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\nindustry = "Industry"\n'
        '[tables.opportunities]\npath = "deals.csv"\n[tables.opportunities.columns]\n'
        'opportunity_id = "Deal ID"\naccount_id = "Account ID"\nstage = "Stage"\n'
        'created_at = "Created"\nclosed_at = "Closed"\n'
        '[tables.opportunities.values.stage]\n"Won" = "won"\n"Lost" = "lost"\n'
        '[tables.churn_events]\npath = "churn.csv"\n[tables.churn_events.columns]\n'
        'account_id = "Account ID"\nchurned_at = "Churned"\n',
    )
    study = icp.open_study(path, reuse_snapshot=False)
    assert study.revenue_basis == "bookings" and study.churn_measured
    by_hand = int((churn & (churn_at <= pd.Timestamp("2025-06-30"))).sum())
    result = overview.data_overview(study)
    rate = result.totals["annual_churn_rate"]
    assert rate["events"] == by_hand and rate["source"] == "churn_events"
    assert result.headline["Churn / year"].endswith("from churn events")
    assert any(
        "NRR cannot be measured (churn counted from churn events)" in c for c in result.caveats
    )
    (retained,) = outcome_frames(study, outcomes=("retained",), holdout_quarters=0)
    assert retained.skipped == ""
    # Customers who started 12 months before the as-of date, kept for those 12 months.
    started = won & (won_at <= pd.Timestamp("2025-06-30") - pd.Timedelta(days=365.25))
    assert len(retained.data) == int(started.sum())


def test_the_churn_line_is_stated_for_the_runs_own_date_with_its_counts(csv, tmp_path):
    """The data-quality line "N of M customers churned as of D" gives the run's date and that
    date's counts: an earlier run's (a --quarter) its own, a run without an as-of date the
    default one (the latest thing that happened), never a date after the data."""

    def line(dataset):
        (message,) = [p.message for p in dataset.report.problems if "churned as of" in p.message]
        return message.rsplit(": ", 1)[1]

    hand = hand_count(csv, MID)
    assert (len(hand["churn_events"]), hand["customers"]) == (78, 240)
    mid = load_tables(CONFIG, as_of=MID)
    assert line(mid) == "78 of 240 customers churned as of 2025-06-30"
    facts = Study(mid, MID).facts
    assert facts.attrs["churn_counts"]["customers"] == 240
    assert int(facts["churned"].fillna(False).astype(bool).sum()) == 78
    assert line(load_tables(CONFIG)) == "81 of 240 customers churned as of 2025-12-31"

    # Without [project] as_of: the default as-of date, the latest churn event (2025-12-11).
    text = CONFIG.read_text(encoding="utf-8").replace('as_of = "2025-12-31"\n', "")
    for name in ("accounts.csv", "subscriptions.csv", "churn_events.csv"):
        (tmp_path / name).write_bytes((FOLDER / name).read_bytes())
    (tmp_path / "icp.toml").write_text(text, encoding="utf-8")
    hand = hand_count(csv, pd.Timestamp("2025-12-11"))
    assert (len(hand["churn_events"]), hand["customers"]) == (81, 240)
    assert (
        line(load_tables(tmp_path / "icp.toml")) == "81 of 240 customers churned as of 2025-12-11"
    )


def test_a_status_whose_churns_end_after_the_default_date_names_the_as_of_date(tmp_path):
    """A hand-kept list: "Churned" customers whose end dates fall after the latest sign-up (the
    default as-of date) were counted active, and the fix offered was churn_source = "status",
    which made things worse; the date is what is early."""
    from icp_research.data.validation import validate

    from .conftest import write_project

    rows = [
        ("A1", "2024-01-01", "2024-06-01", "Churned"),
        ("A2", "2024-02-01", "", "Active"),
        ("A3", "2024-03-01", "2024-09-20", "Churned"),
        ("A4", "2024-09-01", "", "Active"),
    ]
    sheet = "Customer,Signed,Churned on,Status,MRR\n" + "".join(
        f"{a},{s},{e},{st},100\n" for a, s, e, st in rows
    )
    config = (
        '[tables.accounts]\npath = "list.csv"\n[tables.accounts.columns]\n'
        'account_id = "Customer"\ncreated_at = "Signed"\n'
        '[tables.subscriptions]\npath = "list.csv"\n[tables.subscriptions.columns]\n'
        'account_id = "Customer"\nstart_date = "Signed"\nend_date = "Churned on"\nmrr = "MRR"\n'
    )
    report = validate(write_project(tmp_path, {"list.csv": sheet}, config))
    (line,) = [x for x in report.lines() if "says 2 customers churned" in x]
    assert "counts 1 (1 in both); 1 of them end after the as-of date on 2024-09-01" in line
    assert "set [project] as_of (or --quarter) to a date after them" in line


def test_a_churn_date_on_the_account_is_pointed_at_churn_events(tmp_path):
    """A Salesforce first user's Churn_Date__c: churn_source = "Churn_Date__c" said the column
    "holds neither churned flags nor a status" and pointed at flags or "auto"; the way that
    works (the accounts read a second time as churn events) was left to be guessed."""
    from .conftest import write_project

    accounts = "Id,Industry,Churn_Date__c\nA1,Retail,2025-03-01\nA2,Retail,\nA3,Media,\n"
    config = (
        '[analysis]\nchurn_source = "Churn_Date__c"\n'
        '[tables.accounts]\npath = "Account.csv"\n[tables.accounts.columns]\n'
        'account_id = "Id"\nindustry = "Industry"\n'
    )
    errors = validate(write_project(tmp_path, {"Account.csv": accounts}, config)).lines("error")
    assert len(errors) == 1
    assert errors[0].endswith(
        "fix: a churn date is read as churn events: map the accounts file a second time as "
        '[tables.churn_events] with churned_at = "churn_date_c" (and account_id), and set '
        'churn_source = "churn_events"'
    )
