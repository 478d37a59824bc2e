"""A Recurly subscriptions export beside a CRM: trials that show only in the trial-end column,
plural interval units, subscriptions that have not started yet, and account GUIDs written in
another case and without braces."""

from __future__ import annotations

import pandas as pd
import pytest

from icp_research.data import loading, validation
from icp_research.data.facts import account_facts

from .conftest import write_project

HEADER = (
    "uuid,account_code,state,unit_amount_in_cents,quantity,plan_interval_length,"
    "plan_interval_unit,activated_at,expires_at,trial_ends_at\n"
)
# As Recurly writes them: the list price is filled in during a trial, and a trial that ran out
# without paying is "expired" like a churned subscription; only trial_ends_at tells them apart.
SUBS = HEADER + (
    "s1,A1,expired,5000,2,1,months,2024-01-01T09:00:00Z,2024-01-15T09:00:00Z,2024-01-15T09:00:00Z\n"
    "s2,A2,active,5000,2,1,months,2024-01-01T09:00:00Z,,2024-01-15T09:00:00Z\n"
    "s3,A3,active,5000,2,1,months,2024-01-01T09:00:00Z,,\n"
    "s4,A4,expired,5000,2,12,months,2024-02-01T09:00:00Z,2024-08-15T09:00:00Z,2024-02-15T09:00:00Z\n"
    "s5,A5,canceled,5000,2,1,months,2024-03-01T09:00:00Z,2024-03-10T09:00:00Z,2024-03-15T09:00:00Z\n"
)
ACCOUNTS = "account_id\nA1\nA2\nA3\nA4\nA5\n"
CONFIG = (
    '[tables.accounts]\npath = "accounts.csv"\n'
    '[tables.subscriptions]\npath = "subs.csv"\ncents = true\nprice_per_seat = true\n'
    "[tables.subscriptions.columns]\n"
    'account_id = "account_code"\nstart_date = "activated_at"\nend_date = "expires_at"\n'
    'price = "unit_amount_in_cents"\nseats = "quantity"\ninterval = "plan_interval_unit"\n'
    'interval_count = "plan_interval_length"\nstatus = "state"\n'
)


def _load(tmp_path, subs=SUBS, accounts=ACCOUNTS, config=CONFIG):
    files = {"accounts.csv": accounts, "subs.csv": subs}
    return loading.load_tables(write_project(tmp_path, files, config))


def test_a_trial_that_ran_out_is_no_customer_and_a_paid_one_counts_from_its_trial_end(tmp_path):
    dataset = _load(tmp_path)
    subs = dataset.tables["subscriptions"]
    # s1 ended with its trial, s5 was cancelled during it: only trials, left out.
    assert subs["account_id"].tolist() == ["A2", "A3", "A4"]
    assert subs["start_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-15",  # paid from its trial end
        "2024-01-01",
        "2024-02-15",
    ]
    assert subs["arr"].tolist() == [1200.0, 1200.0, 100.0]
    assert "trial_end" not in subs
    notes = [(p.message, p.rows) for p in dataset.report.infos if p.column == "trial_ends_at"]
    assert notes == [
        (
            "2 subscriptions ended on or before their trial end: they were only free trials and "
            "never paid, so they are left out (a trial makes no customer, and its end no churn)",
            [2, 6],
        ),
        (
            "2 subscriptions began with a free trial: each counts from its trial end, when it "
            "began to pay (so a trial running on the as-of date is not a customer yet; e.g. row "
            "3: start 2024-01-01 -> 2024-01-15)",
            [3, 5],
        ),
    ]


@pytest.mark.parametrize(
    ("as_of", "customers", "churned"),
    [
        ("2024-01-10", ["A3"], []),  # A1 and A2 are in their trials: no customers yet
        ("2024-02-10", ["A2", "A3"], []),  # A4 is in its trial
        ("2024-06-30", ["A2", "A3", "A4"], []),  # A5 cancelled its trial: no customer, no churn
        ("2024-12-31", ["A2", "A3", "A4"], ["A4"]),  # A1's trial ran out: not a churn
    ],
)
def test_as_of_a_date_in_a_trial_the_account_is_not_a_customer_yet(
    tmp_path, as_of, customers, churned
):
    facts = account_facts(_load(tmp_path).tables, as_of).set_index("account_id")
    assert facts.index[facts["is_customer"]].tolist() == customers
    assert facts.index[facts["churned"].fillna(False).astype(bool)].tolist() == churned
    if "A4" in customers:  # a customer from its trial end, not its signup
        assert facts.loc["A4", "customer_since"] == pd.Timestamp("2024-02-15")


@pytest.mark.parametrize(
    "header", ["trial_ends_at", "Trial End (UTC)", "trial_end_date", "TrialEnd", "trial_end"]
)
def test_a_trial_end_column_is_read_by_its_name(tmp_path, header):
    # A trial start column before it (every row's own start) is not taken for the trial end.
    lines = SUBS.replace("trial_ends_at", header).splitlines()
    subs = "\n".join(
        [f"trial_started_at,{lines[0]}"] + [f"{r.split(',')[7]},{r}" for r in lines[1:]]
    )
    dataset = _load(tmp_path, subs=subs + "\n")
    assert dataset.tables["subscriptions"]["account_id"].tolist() == ["A2", "A3", "A4"]
    (note,) = [p for p in dataset.report.infos if "only free trials" in p.message]
    assert note.column == header


def test_plural_and_capitalised_interval_units_are_known(tmp_path):
    # Recurly writes plan_interval_unit in the plural: "months", "days" (also years, weeks).
    rows = [
        ("A1", "months", 1),
        ("A2", "Years", 1),
        ("A3", "WEEKS", 2),
        ("A4", "days", 30),
        ("A5", " Quarters ", 1),
    ]
    subs = HEADER + "".join(
        f"s{i},{a},active,5000,2,{n},{unit},2024-01-01T09:00:00Z,,\n"
        for i, (a, unit, n) in enumerate(rows)
    )
    arr = _load(tmp_path, subs=subs).tables["subscriptions"].set_index("account_id")["arr"]
    # 100.00 a billing period: monthly, yearly, every 2 weeks, every 30 days, quarterly.
    assert arr.round(2).to_dict() == {
        "A1": 1200.0,
        "A2": 100.0,
        "A3": 2600.0,
        "A4": 1216.67,
        "A5": 400.0,
    }
    bad = subs.replace("WEEKS", "fortnights")
    path = write_project(tmp_path / "bad", {"accounts.csv": ACCOUNTS, "subs.csv": bad}, CONFIG)
    (error,) = validation.validate(path).errors
    assert error.message == '1 rows have a billing interval that is not a known one ("fortnights")'
    assert error.fix.endswith(
        "(known: day, week, month, quarter, year, their plurals and their -ly forms)"
    )


def test_a_subscription_that_has_not_started_is_left_out_before_its_start_is_asked_for(
    tmp_path,
):
    # Recurly's future subscriptions have no activated_at yet; Zuora's are pending activation.
    subs = SUBS + (
        "s6,A3,future,5000,2,1,months,,,\n"
        "s7,A5,Pending Activation,5000,2,1,months,2024-09-01T09:00:00Z,,\n"
    )
    dataset = _load(tmp_path, subs=subs)
    assert dataset.tables["subscriptions"]["account_id"].tolist() == ["A2", "A3", "A4"]
    (note,) = [p for p in dataset.report.infos if "not started" in p.message]
    assert (note.message, note.rows, note.column) == (
        '2 subscriptions have not started by their status ("future", "Pending Activation"): '
        "they pay nothing yet, so they are left out (no customer until one starts)",
        [7, 8],
        "state",
    )
    # A row that says it runs still needs its start.
    running = subs.replace("s6,A3,future", "s6,A3,active")
    path = write_project(tmp_path / "bad", {"accounts.csv": ACCOUNTS, "subs.csv": running}, CONFIG)
    (error,) = validation.validate(path).errors
    assert (error.message, error.rows, error.column) == (
        "1 rows have no start_date (a required value)",
        [7],
        "activated_at",
    )


G1 = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
G2 = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
G3 = "c0ffee00-1234-4abc-9def-0123456789ab"


def _guid_subs(*codes: str) -> str:
    return HEADER + "".join(
        f"s{i},{code},active,5000,2,1,months,2024-01-01T09:00:00Z,,\n"
        for i, code in enumerate(codes)
    )


def test_dynamics_guids_match_the_same_guids_in_lower_case_without_braces(tmp_path):
    # Dynamics 365 writes "{0A1B...}"; Recurly keeps the account code as "0a1b...".
    accounts = "account_id\n" + "".join(f"{{{g.upper()}}}\n" for g in (G1, G2, G3))
    subs = _guid_subs(G1, G2, "{" + G3 + "}", G1.upper())
    dataset = _load(tmp_path, subs=subs, accounts=accounts)
    assert dataset.tables["subscriptions"]["account_id"].tolist() == [
        f"{{{g.upper()}}}" for g in (G1, G2, G3, G1)
    ]
    (note,) = [p for p in dataset.report.infos if "GUID" in p.message]
    assert (note.message, note.rows, note.column) == (
        "4 rows carry GUIDs written in another case or without the braces of the ids in "
        f'accounts; each was matched to the id that is the same GUID (e.g. "{G1}" -> '
        f'"{{{G1.upper()}}}")',
        [2, 3, 4, 5],
        "account_code",
    )


def test_two_accounts_whose_guids_differ_only_in_spelling_are_never_merged(tmp_path):
    # Two account rows whose ids are one GUID spelled two ways: a row naming it a third way
    # could be either, so it is matched to neither; exact ids match as they are.
    accounts = f"account_id\n{{{G1.upper()}}}\n{G1}\n{{{G2.upper()}}}\n"
    subs = _guid_subs(G1.upper(), G1, G2)
    dataset = _load(tmp_path, subs=subs, accounts=accounts)
    table = dataset.tables["subscriptions"]
    assert table["account_id"].tolist() == [G1.upper(), G1, f"{{{G2.upper()}}}"]
    (warning,) = [p for p in dataset.report.warnings if "not in the accounts" in p.message]
    assert (warning.message.split(";")[0], warning.rows) == (
        f'1 rows (33%) refer to accounts that are not in the accounts table (e.g. "{G1.upper()}")',
        [2],
    )


@pytest.mark.parametrize(
    ("as_of", "trials", "converted", "undecided"),
    [
        ("2024-01-10", 0, 0, 3),  # A1, A2 and A6 are in their trials
        # A2 paid; A1 and A6 ran out less than 90 days ago (they may still pay); A4 is in its
        # trial.
        ("2024-02-10", 1, 1, 3),
        ("2024-06-30", 5, 3, 0),  # A4 paid; A5 cancelled during its trial; A6 bought 45 days on
    ],
)
def test_trial_conversion_is_measured_from_the_trial_ends(
    tmp_path, as_of, trials, converted, undecided
):
    """Trials read from the trial-end column are the trials table, and the churn report
    measures their conversion (it said the trials "are not counted as conversion"): a trial
    that ran past its trial end, or an account that bought a plan within 90 days after its
    trial ran out, converted; one still in its trial, or less than 90 days past its end without
    paying, on the as-of date is undecided."""
    import icp_research as icp
    from icp_research.analyses.churn import trial_conversion

    subs = SUBS + (
        "s6,A6,expired,5000,2,1,months,2024-01-02T09:00:00Z,2024-01-16T09:00:00Z,2024-01-16T09:00:00Z\n"
        "s7,A6,active,5000,2,1,months,2024-03-01T09:00:00Z,,\n"
    )
    config = write_project(tmp_path, {"accounts.csv": ACCOUNTS + "A6\n", "subs.csv": subs}, CONFIG)
    dataset = loading.load_tables(config)
    table = dataset.tables["trials"]
    assert sorted(table["account_id"]) == ["A1", "A2", "A4", "A5", "A6"]
    assert table.loc[table["account_id"] == "A2", "start_date"].dt.day.tolist() == [1]
    study = icp.open_study(config, as_of=as_of, reuse_snapshot=False)
    summary = trial_conversion(study).summary.iloc[0]
    assert (summary["trials"], summary["converted"], summary["undecided"]) == (
        trials,
        converted,
        undecided,
    )


def test_trial_conversion_is_not_broken_down_by_the_contract_term_it_sets(tmp_path):
    """Only converted trials have a billing period, so the churn report's conversion table read
    "monthly 100%, annual 100%, (missing) 0%": a term chosen at conversion, not a trait."""
    import icp_research as icp
    from icp_research.analyses import antipatterns as ap
    from icp_research.analyses.churn import trial_conversion

    accounts = "account_id,kind\nA1,x\nA2,x\nA3,y\nA4,y\nA5,x\nA6,y\n"
    subs = SUBS + (
        "s6,A6,expired,5000,2,1,months,2024-01-02T09:00:00Z,2024-01-16T09:00:00Z,2024-01-16T09:00:00Z\n"
        "s7,A6,active,5000,2,1,months,2024-03-01T09:00:00Z,,\n"
    )
    config = write_project(tmp_path, {"accounts.csv": accounts, "subs.csv": subs}, CONFIG)
    study = icp.open_study(config, as_of="2024-06-30", reuse_snapshot=False)
    facts = study.facts
    assert facts["billing_period"].notna().any()
    levels = ap.segment_levels(
        facts, categorical=["kind", "billing_period"], numeric=[], n_bins=4, min_level_count=1
    )
    assert "billing_period" in levels.attributes
    summary = trial_conversion(study, levels=levels).summary
    assert set(summary["attribute"]) == {"all", "kind"}
    assert summary.loc[summary["attribute"] == "kind", "trials"].sum() == 5
