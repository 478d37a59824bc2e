"""Amounts in several currencies: converted amounts are recognised as such, and
``[project] exchange_rates`` converts the rest to the project's currency."""

from __future__ import annotations

import pytest

from icp_research.data import loading, validation
from icp_research.data.config import currency_code, currency_key, load_config
from icp_research.errors import ConfigError

from .conftest import write_project

ACCOUNTS = "Account ID,Industry\nA1,SaaS\nA2,Retail\nA3,SaaS\n"

# A multi-currency Salesforce org's Opportunities report: the amount as sold names its currency;
# the converted amount is in the corporate currency, with its own currency column.
SALESFORCE = (
    "Opportunity ID,Account ID,Stage,Created Date,Close Date,Opportunity Currency,Amount,"
    "Amount (converted) Currency,Amount (converted)\n"
    'O1,A1,Closed Won,2024-01-05,2024-02-01,GBP,"GBP 1,000.00",GBP,"1,000.00"\n'
    'O2,A2,Closed Lost,2024-01-09,2024-03-01,EUR,"EUR 2,000.00",GBP,"1,700.00"\n'
    'O3,A3,Closed Won,2024-02-05,2024-04-01,USD,"USD 1,000.00",GBP,790.00\n'
)


def _salesforce_config(amount: str, project: str = "", drop: str = "") -> str:
    return (
        f"[project]\n{project}\n"
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\nindustry = "Industry"\n'
        f'[tables.opportunities]\npath = "opportunities.csv"\n{drop}\n'
        "[tables.opportunities.columns]\n"
        'opportunity_id = "Opportunity ID"\naccount_id = "Account ID"\nstage = "Stage"\n'
        f'created_at = "Created Date"\nclosed_at = "Close Date"\namount = "{amount}"\n'
        '[tables.opportunities.values.stage]\n"Closed Won" = "won"\n"Closed Lost" = "lost"\n'
    )


def _load(tmp_path, files: dict, config: str):
    return loading.load_tables(write_project(tmp_path, files, config))


def _currency_problems(dataset):
    return [p for p in dataset.report.problems if "currenc" in p.message]


def test_the_converted_amount_is_in_one_currency_whatever_each_deal_was_sold_in(tmp_path):
    files = {"accounts.csv": ACCOUNTS, "opportunities.csv": SALESFORCE}
    # The README's fix for mixed currencies, followed: map the converted amount.
    dataset = _load(tmp_path, files, _salesforce_config("Amount (converted)"))
    amounts = dataset.tables["opportunities"]["amount"].tolist()
    assert amounts == [1000.0, 1700.0, 790.0]
    # "Opportunity Currency" says what each deal was sold in, not what the converted amount is
    # in: no warning that amounts are added up across currencies, and the reports write £.
    assert not [p for p in dataset.report.warnings if p.message.startswith("amounts are in")]
    assert dataset.currency == "£"
    # The amount as sold, mapped instead, still gets the warning (in its cells' words).
    raw = _load(tmp_path / "raw", files, _salesforce_config("Amount"))
    warnings = [p for p in raw.report.warnings if p.message.startswith("amounts are in")]
    assert warnings and all("3 currencies" in w.message for w in warnings)
    assert raw.currency == "¤"


def test_exchange_rates_convert_marked_amounts_to_the_project_currency(tmp_path):
    files = {"accounts.csv": ACCOUNTS, "opportunities.csv": SALESFORCE}
    config = _salesforce_config(
        "Amount", project='currency = "GBP"\nexchange_rates = {EUR = 0.85, USD = 0.79}'
    )
    dataset = _load(tmp_path, files, config)
    amounts = dataset.tables["opportunities"]["amount"].tolist()
    assert amounts == pytest.approx([1000.0, 1700.0, 790.0])
    assert not dataset.report.warnings or not [
        p for p in dataset.report.warnings if p.message.startswith("amounts are in")
    ]
    (note,) = [p for p in dataset.report.infos if "converted to GBP" in p.message]
    assert note.message.startswith("2 amounts converted to GBP at [project] exchange_rates")
    assert "EUR 1 (x 0.85)" in note.message and "USD 1 (x 0.79)" in note.message
    assert dataset.currency == "£"


def test_exchange_rates_read_a_billing_exports_currency_column(tmp_path):
    """A Chargebee-style export: plain prices, each row's currency in a column beside them."""
    subscriptions = (
        "customer,currency_code,plan_unit_price,started_at,cancelled_at\n"
        "A1,GBP,100,2024-01-01,\n"
        "A2,EUR,100,2024-01-01,2024-06-01\n"
        "A3,usd,100,2024-01-01,\n"
        "A3,,50,2024-02-01,\n"
    )
    config = (
        '[project]\ncurrency = "GBP"\nexchange_rates = {EUR = 0.85, USD = 0.79}\n'
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\nindustry = "Industry"\n'
        '[tables.subscriptions]\npath = "subscriptions.csv"\n'
        "[tables.subscriptions.columns]\n"
        'account_id = "customer"\nstart_date = "started_at"\nend_date = "cancelled_at"\n'
        'mrr = "plan_unit_price"\n'
    )
    files = {"accounts.csv": ACCOUNTS, "subscriptions.csv": subscriptions}
    dataset = _load(tmp_path, files, config)
    arr = dataset.tables["subscriptions"].sort_values(["account_id", "arr"])["arr"].tolist()
    # MRR read as ARR (x 12); a blank currency is the project's.
    assert arr == pytest.approx([1200.0, 1020.0, 600.0, 948.0])
    # The currency column is read, so it is not reported as "not used".
    assert not [p for p in dataset.report.warnings if "currency_code" in p.message]
    (note,) = [p for p in dataset.report.infos if "converted to GBP" in p.message]
    assert "EUR 1 (x 0.85)" in note.message and "USD 1 (x 0.79)" in note.message
    # Without rates, the same export is the warning it always was.
    plain = _load(
        tmp_path / "plain", files, config.replace("exchange_rates = {EUR = 0.85, USD = 0.79}", "")
    )
    (warning,) = [p for p in plain.report.warnings if p.message.startswith("amounts are in")]
    assert 'by the column "currency_code"' in warning.message


def test_a_header_naming_its_currency_is_converted_by_it(tmp_path):
    subscriptions = 'customer,start,MRR (EUR)\nA1,2024-01-01,200\nA2,2024-01-01,"€100"\n'
    config = (
        '[project]\ncurrency = "GBP"\nexchange_rates = {EUR = 0.5}\n'
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.subscriptions]\npath = "subscriptions.csv"\n'
        "[tables.subscriptions.columns]\n"
        'account_id = "customer"\nstart_date = "start"\nmrr = "MRR (EUR)"\n'
    )
    dataset = _load(
        tmp_path, {"accounts.csv": ACCOUNTS, "subscriptions.csv": subscriptions}, config
    )
    assert sorted(dataset.tables["subscriptions"]["arr"]) == [600.0, 1200.0]


def test_an_amount_in_a_currency_without_a_rate_is_an_error_naming_it(tmp_path):
    files = {"accounts.csv": ACCOUNTS, "opportunities.csv": SALESFORCE}
    config = _salesforce_config("Amount", project='currency = "GBP"\nexchange_rates = {EUR = 0.85}')
    report = validation.validate(write_project(tmp_path, files, config))
    (error,) = [p for p in report.errors if "exchange_rates" in p.message]
    assert "1 amounts are in a currency [project] exchange_rates gives no rate for (USD 1)" in (
        error.message
    )
    assert error.fix.startswith("add USD = <what one USD is worth in GBP>")
    assert error.rows == [4] and error.column == "Amount"


@pytest.mark.parametrize(
    ("project", "message"),
    [
        ("exchange_rates = {EUR = 0.85}", "which is not set; add currency"),
        ('currency = "GBP"\nexchange_rates = {EUR = 0}', "EUR = 0 must be a positive number"),
        ('currency = "GBP"\nexchange_rates = {EUR = "0.85"}', "must be a positive number"),
        ('currency = "GBP"\nexchange_rates = 0.85', "must name each currency"),
        ('currency = "GBP"\nexchange_rates = {GBP = 2}', "is the project's currency"),
    ],
)
def test_bad_exchange_rates_are_config_errors(tmp_path, project, message):
    files = {"accounts.csv": ACCOUNTS, "opportunities.csv": SALESFORCE}
    path = write_project(tmp_path, files, _salesforce_config("Amount", project=project))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_currency_names_are_one_key_and_one_code():
    assert currency_key("EUR") == currency_key("eur") == currency_key("€") == "€"
    assert currency_key("USD") == "$" and currency_key("sek") == "SEK"
    assert currency_key("CHF") == "CHF"
    assert currency_code("$") == "USD" and currency_code("€") == "EUR"
    assert currency_code("CHF") == "CHF" and currency_code("SEK") == "SEK"
