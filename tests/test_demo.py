"""The demo dataset: deterministic, the promised size and shape, and the planted truth is in it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, mannwhitneyu

from devtools import demo_data as demo
from icp_research.data.demo import DEMO_CONFIG, DEMO_DIR
from icp_research.data.schema import TABLES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CSV_FILES = [
    "accounts.csv",
    "opportunities.csv",
    "subscriptions.csv",
    "churn_events.csv",
    "nps.csv",
    "feedback.csv",
    "deal_roles.csv",
]
NOISE_ATTRIBUTES = ["region", "cloud", "website_platform", "fiscal_year_end"]


@pytest.fixture(scope="module")
def tables():
    return demo.generate_demo(7)


@pytest.fixture(scope="module")
def written_config(tmp_path_factory) -> Path:
    return demo.simulate_demo_exports(tmp_path_factory.mktemp("demo_exports"), seed=7)


def _read_exports(directory: Path) -> dict[str, pd.DataFrame]:
    """Every export file of a folder, CSV cells as text exactly as written."""
    frames = {name: _read_csv(directory / name) for name in CSV_FILES}
    frames["usage.parquet"] = _read_parquet(directory / "usage.parquet")
    frames["survey.xlsx"] = pd.read_excel(directory / "survey.xlsx", sheet_name="answers")
    return frames


@pytest.fixture(scope="module")
def written(written_config) -> dict[str, pd.DataFrame]:
    return _read_exports(written_config.parent)


@pytest.fixture(scope="module")
def accounts(tables):
    accounts = tables["accounts"]
    return accounts.assign(icp=demo.is_planted_icp(accounts))


@pytest.fixture(scope="module")
def closed_deals(tables, accounts):
    deals = tables["opportunities"].merge(
        accounts.drop(columns="created_at"), on="account_id", validate="many_to_one"
    )
    deals = deals[deals["stage"] != "open"]
    return deals.assign(won=deals["stage"].eq("won"))


@pytest.fixture(scope="module")
def customers(tables, accounts):
    """One row per customer: start, churn, initial and current ARR, attributes."""
    subscriptions = tables["subscriptions"]
    start = subscriptions.groupby("account_id")["start_date"].min().rename("start")
    active = subscriptions[subscriptions["end_date"].isna()]
    frame = (
        start.to_frame()
        .join(tables["churn_events"].set_index("account_id")["churned_at"])
        .join(active.groupby("account_id")["arr"].sum().rename("current_arr"))
        .join(accounts.set_index("account_id"))
    )
    end = frame["churned_at"].fillna(demo.AS_OF)
    return frame.assign(years=(end - frame["start"]).dt.days / 365.25)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except ImportError:  # pyarrow unusable here: DuckDB reads Parquet too
        import duckdb

        return duckdb.connect().execute("SELECT * FROM read_parquet(?)", [str(path)]).df()


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _win_rate(frame: pd.DataFrame) -> float:
    return float(frame["won"].mean())


def _churn_rate(frame: pd.DataFrame) -> float:
    """Churn events per customer-year."""
    return float(frame["churned_at"].notna().sum() / frame["years"].sum())


# -- determinism and shape --------------------------------------------------------------------


def test_same_seed_gives_identical_tables(tables):
    again = demo.generate_demo(7)
    assert list(again) == list(tables)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(again[name], frame, check_exact=True, obj=name)


def test_canonical_names_and_types(tables):
    for name, frame in tables.items():
        table = TABLES[name]
        known = {c.name for c in table.columns}
        extra = set(frame.columns) - known
        if name == "accounts":
            assert extra == {"crm", "uses_sso", "cloud", "website_platform", "fiscal_year_end"}
        else:
            assert not extra, (name, extra)
        for column in frame.columns:
            kind = table.column(column).kind if table.column(column) else "category"
            if kind == "date":
                assert frame[column].dtype == "datetime64[ns]", (name, column)
            elif kind in ("money", "number"):
                assert frame[column].dtype == "float64", (name, column)
            else:
                assert frame[column].dtype == object, (name, column)
                values = frame[column].dropna()
                assert values.map(type).eq(str).all(), (name, column)
        assert frame[table.required].notna().all().all(), name
    opportunities = tables["opportunities"]
    assert set(opportunities["stage"]) == {"won", "lost", "open"}
    assert set(opportunities["type"]) == {"new", "expansion"}
    assert opportunities["opportunity_id"].is_unique
    assert tables["accounts"]["account_id"].is_unique


def test_sizes_period_and_integrity(tables):
    accounts, opportunities = tables["accounts"], tables["opportunities"]
    assert len(accounts) == 3000
    assert len(opportunities) >= 12000
    created = opportunities["created_at"]
    assert created.min() >= pd.Timestamp("2024-01-01")
    assert created.dt.to_period("Q").nunique() == 11
    assert (opportunities["stage"] == "open").sum() > 500
    assert opportunities.loc[opportunities["stage"] == "open", "closed_at"].isna().all()
    assert opportunities.loc[opportunities["stage"] != "open", "closed_at"].notna().all()
    assert (
        opportunities["closed_at"].dropna() >= created[opportunities["closed_at"].notna()]
    ).all()
    # Nothing happens after the as-of date.
    for name, column in [
        ("opportunities", "closed_at"),
        ("subscriptions", "start_date"),
        ("subscriptions", "end_date"),
        ("churn_events", "churned_at"),
        ("usage", "date"),
        ("nps", "date"),
        ("feedback", "date"),
        ("survey", "date"),
    ]:
        assert tables[name][column].max() <= demo.AS_OF, (name, column)
    for name in ["opportunities", "subscriptions", "churn_events", "usage", "nps", "survey"]:
        assert tables[name]["account_id"].isin(accounts["account_id"]).all(), name
    roles_per_deal = tables["deal_roles"].groupby("opportunity_id").size()
    assert roles_per_deal.index.isin(opportunities["opportunity_id"]).all()
    assert len(roles_per_deal) == len(opportunities)
    assert roles_per_deal.between(1, 6).all() and roles_per_deal.max() == 6
    # Every churned customer's lines end on its churn date; active customers have open lines.
    ends = tables["subscriptions"].groupby("account_id")["end_date"].max()
    churned = tables["churn_events"].set_index("account_id")["churned_at"]
    assert (ends.reindex(churned.index) == churned).all()
    assert ends.drop(churned.index).isna().all()
    # A churned customer has no open deals and no deals created after it left.
    deals_of_churned = opportunities.merge(churned.rename("churned_at"), on="account_id")
    assert (deals_of_churned["stage"] != "open").all()
    assert (deals_of_churned["created_at"] < deals_of_churned["churned_at"]).all()
    assert set(tables["feedback"]["source"]) == {"churn", "loss", "call note"}
    # Missing values where a CRM has them, and "None" kept as a CRM value.
    assert accounts["industry"].isna().mean() == pytest.approx(0.04, abs=0.015)
    assert accounts["crm"].isna().mean() == pytest.approx(0.05, abs=0.015)
    assert (accounts["crm"] == "None").mean() > 0.15


# -- the shipped exports ----------------------------------------------------------------------


def test_shipped_exports_are_what_the_generator_writes(written_config, written):
    assert written_config.read_text(encoding="utf-8") == DEMO_CONFIG.read_text(encoding="utf-8")
    shipped = _read_exports(DEMO_DIR)
    assert list(shipped) == list(written)
    for name, frame in shipped.items():
        pd.testing.assert_frame_equal(frame, written[name], obj=name)
    total_bytes = sum(path.stat().st_size for path in DEMO_DIR.iterdir())
    assert total_bytes < 6_000_000


def test_exports_carry_the_quirks_of_real_exports(written_config, written):
    directory = written_config.parent
    assert (directory / "accounts.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    accounts = written["accounts.csv"]
    assert accounts.columns[0] == "Account ID"
    revenue = accounts["Annual Revenue"]
    assert revenue[revenue != ""].str.fullmatch(r"\$\d{1,3}(,\d{3})+\.00").all()
    assert accounts["Created Date"].str.fullmatch(r"\d\d/\d\d/\d{4}").all()
    assert {"None", ""} <= set(accounts["CRM"])
    assert set(accounts["Uses SSO"]) == {"Yes", "No"}
    assert accounts["Primary Contact Email"].str.contains("@").mean() > 0.8
    assert {"", "N/A"} <= set(accounts["Industry"])

    deals = written["opportunities.csv"]
    assert set(deals["Stage"]) == {
        "Closed Won",
        "Closed Lost",
        "Discovery",
        "Proposal",
        "Negotiation",
    }
    assert set(deals["Type"]) == {"New Business", "Expansion"}
    assert deals["Amount"].str.fullmatch(r"\d{1,3}(,\d{3})*\.\d\d").all()
    assert deals["Amount"].str.contains(",").any()
    lost_reasons = deals.loc[deals["Stage"] == "Closed Lost", "Loss Reason"]
    assert {"", "NULL", "N/A", "No Decision / Non-Responsive"} <= set(lost_reasons)
    assert (deals.loc[deals["Stage"] != "Closed Lost", "Loss Reason"] == "").all()
    assert "NULL" in set(deals["Opportunity Owner"]) and "N/A" in set(deals["Lead Source"])

    subscriptions = written["subscriptions.csv"]
    assert "ARR" not in subscriptions and (subscriptions["End Date"] == "").any()
    usage = written["usage.parquet"]
    assert list(usage.columns) == ["account_id", "month", "metric", "value"]
    assert (directory / "usage.parquet").stat().st_size < 3_000_000
    survey = written["survey.xlsx"]
    assert list(survey.columns) == ["Account ID", "Question", "Answer", "Submitted At"]


def test_config_maps_every_table_to_columns_that_exist(written_config, written):
    config = tomllib.loads(written_config.read_text(encoding="utf-8"))
    assert config["project"]["as_of"] == "2026-09-30"
    # Every canonical table but the stage history (the demo's CRM records current stages only)
    # and the trials (its billing export has no free trials).
    assert set(config["tables"]) == set(TABLES) - {"stage_history", "trials"}
    for name, spec in config["tables"].items():
        assert (written_config.parent / spec["path"]).is_file()
        assert spec.get("sheet", "answers") == "answers"
        header = list(written[spec["path"]].columns)
        for canonical, source in spec["columns"].items():
            assert source in header, (name, source)
            known = TABLES[name].column(canonical) is not None
            assert known or name == "accounts", (name, canonical)
        assert set(TABLES[name].required) <= set(spec["columns"]) | {"arr"}, name
    stage_map = config["tables"]["opportunities"]["values"]["stage"]
    assert set(stage_map.values()) == {"won", "lost", "open"}
    attributes = config["attributes"]
    assert "crm" in attributes["categorical"] and "employees" in attributes["numeric"]
    assert config["analysis"] == {
        "best_customer_metric": "arr",
        "best_customer_top_share": 0.2,
        "alpha": 0.05,
    }


def test_exports_parse_back_to_the_canonical_tables(tables, written_config, written):
    """Reading the exports the way the config says gives generate_demo's values."""
    config = tomllib.loads(written_config.read_text(encoding="utf-8"))["tables"]

    def canonical(name: str) -> pd.DataFrame:
        raw = written[config[name]["path"]]
        columns = config[name]["columns"]
        frame = raw[list(columns.values())].set_axis(list(columns), axis=1)
        return frame.replace({"": np.nan, "NULL": np.nan, "N/A": np.nan})

    def money(column: pd.Series) -> pd.Series:
        return pd.to_numeric(column.str.replace(r"[$,]", "", regex=True))

    accounts = canonical("accounts")
    expected = tables["accounts"]
    pd.testing.assert_series_equal(money(accounts["annual_revenue"]), expected["annual_revenue"])
    pd.testing.assert_series_equal(
        pd.to_datetime(accounts["created_at"], format="%m/%d/%Y"), expected["created_at"]
    )
    for column in ["account_id", "name", "industry", "crm", "uses_sso", "referral_source"]:
        pd.testing.assert_series_equal(accounts[column], expected[column])
    pd.testing.assert_series_equal(
        pd.to_numeric(accounts["employees"]).astype(float), expected["employees"]
    )

    deals = canonical("opportunities")
    expected = tables["opportunities"]
    values = config["opportunities"]["values"]
    pd.testing.assert_series_equal(deals["stage"].map(values["stage"]), expected["stage"])
    pd.testing.assert_series_equal(deals["type"].map(values["type"]), expected["type"])
    pd.testing.assert_series_equal(
        deals["loss_reason"].replace(values["loss_reason"]), expected["loss_reason"]
    )
    pd.testing.assert_series_equal(money(deals["amount"]), expected["amount"])
    pd.testing.assert_series_equal(pd.to_datetime(deals["closed_at"]), expected["closed_at"])

    subscriptions = canonical("subscriptions")
    expected = tables["subscriptions"]
    arr = (money(subscriptions["mrr"]) * 12).rename("arr")
    pd.testing.assert_series_equal(arr, expected["arr"])
    pd.testing.assert_series_equal(pd.to_datetime(subscriptions["end_date"]), expected["end_date"])

    feedback = canonical("feedback")
    pd.testing.assert_series_equal(feedback["text"], tables["feedback"]["text"])


# -- the planted truth is in the data ---------------------------------------------------------


def test_planted_icp_wins_more(closed_deals):
    new_business = closed_deals[closed_deals["type"] == "new"]
    icp_rate = _win_rate(new_business[new_business["icp"]])
    rest_rate = _win_rate(new_business[~new_business["icp"]])
    assert 0.18 <= rest_rate <= 0.27
    assert icp_rate >= 2 * rest_rate
    by_industry = new_business.groupby("industry")["won"].mean()
    assert by_industry["Education"] == by_industry.min()
    by_source = new_business.groupby("referral_source")["won"].mean()
    assert by_source["Referral"] == by_source.max()


def test_noise_attributes_have_no_effect(closed_deals, accounts, tables):
    new_business = closed_deals[closed_deals["type"] == "new"]
    industry_spread = np.ptp(new_business.groupby("industry")["won"].mean())
    became_customer = accounts["account_id"].isin(tables["subscriptions"]["account_id"])
    for attribute in NOISE_ATTRIBUTES:
        rates = new_business.groupby(attribute)["won"].mean()
        assert np.ptp(rates) < 0.06, (attribute, rates.round(3).to_dict())
        assert np.ptp(rates) < industry_spread / 3
        # At account level (deals cluster by account), independence is not rejected
        # (Bonferroni over the noise attributes).
        table = pd.crosstab(accounts[attribute], became_customer)
        assert chi2_contingency(table).pvalue > 0.05 / len(NOISE_ATTRIBUTES), attribute
    founded = pd.cut(new_business["founded_year"], [0, 2000, 2010, 2016, 2020, 2030])
    assert np.ptp(new_business.groupby(founded, observed=True)["won"].mean()) < 0.06


def test_churn_anti_patterns(customers, tables, accounts):
    small = customers["employees"] < 50
    assert _churn_rate(customers[small]) > 2 * _churn_rate(customers[~small])
    no_crm = customers["crm"] == "None"
    assert _churn_rate(customers[no_crm]) > 1.5 * _churn_rate(customers[~no_crm])
    assert _churn_rate(customers[customers["icp"]]) < 0.5 * _churn_rate(
        customers[~customers["icp"]]
    )
    reasons = tables["churn_events"].merge(accounts, on="account_id")
    small_reasons = reasons.loc[reasons["employees"] < 50, "reason"]
    assert small_reasons.isin(["Price", "No internal owner"]).mean() > 0.4
    no_crm_reasons = reasons.loc[reasons["crm"] == "None", "reason"]
    assert no_crm_reasons.value_counts().index[0] == "Missing integration"


def test_no_decision_losses_without_a_crm(closed_deals):
    lost = closed_deals[~closed_deals["won"]]
    no_decision = lost["loss_reason"].eq("No decision")
    assert (
        no_decision[lost["crm"] == "None"].mean() > no_decision[lost["crm"] != "None"].mean() + 0.1
    )


def test_best_customers_are_the_planted_icp_not_the_largest(customers):
    retained = customers[customers["churned_at"].isna()]
    best = retained["current_arr"] >= retained["current_arr"].quantile(0.8)
    icp_share_best = retained.loc[best, "icp"].mean()
    icp_share_rest = retained.loc[~best, "icp"].mean()
    assert icp_share_best >= 0.5
    assert icp_share_best >= 3 * icp_share_rest
    large = retained["employees"] >= 1000
    assert retained.loc[best, "icp"].sum() > 3 * (best & large).sum()


def test_icp_expands_refers_scores_and_closes_faster(customers, closed_deals, tables, accounts):
    initial = tables["subscriptions"].sort_values("start_date").groupby("account_id")["arr"].first()
    retained = customers[customers["churned_at"].isna() & (customers["years"] > 1)]
    growth = (retained["current_arr"] / initial.reindex(retained.index)) ** (1 / retained["years"])
    assert growth[retained["icp"]].median() > 1.2
    assert growth[~retained["icp"]].median() < 1.1
    referred = (customers["referral_source"] == "Referral").mean()
    assert 0.2 <= referred <= 0.3
    nps = tables["nps"].merge(accounts, on="account_id")
    assert nps.loc[nps["icp"], "score"].mean() > nps.loc[~nps["icp"], "score"].mean() + 1
    won = closed_deals[closed_deals["won"] & (closed_deals["type"] == "new")]
    cycle = (won["closed_at"] - won["created_at"]).dt.days
    assert cycle[won["icp"]].median() < 0.85 * cycle[~won["icp"]].median()
    usage = tables["usage"].merge(accounts, on="account_id")
    users = usage[usage["metric"] == "active_users"].groupby("icp")["value"].mean()
    assert users[True] > users[False]


def test_deal_roles_signals(closed_deals, tables):
    flags = demo.deal_role_flags(tables["deal_roles"])
    deals = closed_deals.join(flags, on="opportunity_id")
    assert _win_rate(deals[deals["economic_buyer"]]) > _win_rate(deals[~deals["economic_buyer"]])
    champion = deals["revops_champion"]
    assert _win_rate(deals[champion]) > _win_rate(deals[~champion]) + 0.1
    size = pd.cut(deals["employees"], [0, 50, 1000, np.inf], right=False)
    stakeholders = deals.groupby(size, observed=True)["stakeholders"].mean()
    assert stakeholders.is_monotonic_increasing and stakeholders.iloc[-1] > stakeholders.iloc[0]
    assert not tables["deal_roles"].apply(lambda c: c.str.contains("@")).any().any()


def test_voice_of_the_customer_themes(tables, accounts):
    feedback = tables["feedback"].merge(accounts, on="account_id")
    text = feedback["text"].str.lower()
    churn = feedback["source"] == "churn"
    integration = text.str.contains("integration|connect|crm")
    assert integration[churn & (feedback["crm"] == "None")].mean() > 0.35
    assert integration[churn & (feedback["crm"] != "None")].mean() < 0.2
    calls = feedback["source"] == "call note"
    revops = text.str.contains("revops|sales ops")
    assert revops[calls & feedback["icp"]].mean() > revops[calls & ~feedback["icp"]].mean() + 0.2
    no_decision = feedback["opportunity_id"].isin(
        tables["opportunities"].loc[lambda d: d["loss_reason"] == "No decision", "opportunity_id"]
    )
    assert text[no_decision].str.contains("budget owner|security").mean() > 0.3
    assert not feedback["text"].map(str.isascii).all()  # a few notes are not in English
    assert feedback["text"].str.isupper().any() and text.str.endswith("!").any()

    survey = tables["survey"].merge(accounts, on="account_id")
    respondents = survey["account_id"].nunique() / tables["subscriptions"]["account_id"].nunique()
    assert 0.25 <= respondents <= 0.45
    owner = survey[survey["question"] == "team_owner"]
    revops_share = owner.groupby("icp")["answer"].apply(lambda a: a.eq("RevOps").mean())
    assert revops_share[True] > revops_share[False] + 0.3


# -- the truth as functions -------------------------------------------------------------------


def test_truth_functions_on_hand_made_accounts():
    accounts = pd.DataFrame(
        {
            "industry": ["SaaS", "Retail", "Education", None, "FinTech"],
            "employees": [200, 20, 5000, 300, 1000],
            "crm": ["HubSpot", "None", "Salesforce", "HubSpot", None],
            "referral_source": ["Referral", "Outbound", "Inbound", "Partner", "Event"],
        }
    )
    assert demo.is_planted_icp(accounts).tolist() == [True, False, False, False, False]
    np.testing.assert_allclose(
        demo.true_win_logit(accounts),
        [-2.6 + 1.0 + 0.7 + 0.6 + 0.7, -2.6 - 0.3, -2.6 + 0.6 - 0.6, -2.6 + 0.7 + 0.6 + 0.3, -1.6],
    )
    np.testing.assert_allclose(
        demo.true_churn_hazard_ratio(accounts), [0.6**3, 2.3 * 1.8, 0.6, 0.36, 0.6]
    )
    expansion = accounts.assign(type="expansion")
    shift = demo.true_win_logit(expansion) - demo.true_win_logit(accounts)
    np.testing.assert_allclose(shift, 0.8)
    probability = demo.true_win_probability(accounts)
    assert probability.between(0, 1).all() and probability.idxmax() == 0
    # Averaging over the account effect pulls probabilities towards one half.
    plain = 1 / (1 + np.exp(-demo.true_win_logit(accounts)))
    assert (probability.iloc[1:] > plain.iloc[1:]).all()


def test_oracle_win_probability_ranks_the_deals(closed_deals, tables):
    probability = demo.true_win_probability(closed_deals)
    with_roles = demo.true_win_probability(closed_deals, tables["deal_roles"])
    won = closed_deals["won"].to_numpy()
    n_pairs = won.sum() * (~won).sum()
    auc = mannwhitneyu(probability[won], probability[~won]).statistic / n_pairs
    auc_roles = mannwhitneyu(with_roles[won], with_roles[~won]).statistic / n_pairs
    assert 0.7 < auc < auc_roles < 0.85
    assert probability.mean() == pytest.approx(won.mean(), abs=0.04)


def test_deals_of_one_account_are_correlated(closed_deals):
    """Residuals of expansion deals cluster by account beyond binomial noise (random effect)."""
    deals = closed_deals[closed_deals["type"] == "expansion"]
    residual = deals["won"] - demo.true_win_probability(deals)
    by_account = residual.groupby(deals["account_id"]).agg(["sum", "size"])
    by_account = by_account[by_account["size"] >= 3]
    # Without clustering, E[(sum of residuals)^2] equals the sum of the binomial variances.
    variance = (
        (demo.true_win_probability(deals) * (1 - demo.true_win_probability(deals)))
        .groupby(deals["account_id"])
        .sum()
    )
    ratio = (by_account["sum"] ** 2).sum() / variance.reindex(by_account.index).sum()
    assert ratio > 1.3


def test_load_demo_works_in_a_fresh_interpreter():
    # The package's names are imported lazily; load_demo must not depend on another call
    # (icp.open_study) having imported its helper first.
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", "import icp_research as icp; print(len(icp.load_demo().facts))"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "3000"
