"""Export shapes the config expresses: order lines rolled up into deals, account_id looked up
through another table's key, a constant for a column; and encodings that decode without an
error but garble the text."""

from __future__ import annotations

import pandas as pd
import pytest

from icp_research.cli import main
from icp_research.data.config import config_from_dict, load_config
from icp_research.data.encodings import clean_encodings, mojibake_count, rank_encodings
from icp_research.data.loading import load_tables
from icp_research.data.validation import validate
from icp_research.errors import ConfigError

from .conftest import FIXTURES, write_project

ORDER_LINES = FIXTURES / "exports" / "order_lines"
MAC_ROMAN = FIXTURES / "exports" / "mac_roman"


@pytest.fixture(scope="module")
def order_lines():
    return load_tables(ORDER_LINES / "icp.toml")


def _messages(report, level: str) -> list[str]:
    return [p.line() for p in report.problems if p.level == level]


# -- order lines -------------------------------------------------------------------------------


def test_order_lines_roll_up_into_one_won_deal_per_order(order_lines):
    raw = pd.read_csv(ORDER_LINES / "orders.csv", dtype=str)
    deals = order_lines.tables["opportunities"].set_index("opportunity_id")
    assert len(raw) == 219 and raw["Order ID"].nunique() == 93
    assert len(deals) == 93 and deals.index.is_unique
    # SO-1001 has three lines: Onboarding 900 + Analytics 1,500 + Seats pack 600.
    assert deals.loc["SO-1001", "amount"] == 3000.0
    assert deals.loc["SO-1004", "amount"] == 11200.0
    assert deals["amount"].sum() == pytest.approx(raw["Line Amount"].astype(float).sum())
    assert deals["amount"].sum() == 736800.0
    assert set(deals["stage"]) == {"won"}  # stage = { value = "won" }
    assert (deals["closed_at"] == deals["created_at"]).all()
    notes = _messages(order_lines.report, "info")
    assert any(
        "line items rolled up: 192 rows of 66 deals became one row per opportunity_id" in line
        and "93 deals in all" in line
        for line in notes
    ), notes


def test_usage_gets_its_account_through_the_subscription(order_lines):
    usage = order_lines.tables["usage"]
    subscriptions = order_lines.tables["subscriptions"]
    assert len(usage) == 133  # 137 rows, 4 without a known subscription
    assert list(usage.columns) == ["account_id", "date", "metric", "value"]
    assert "subscription_id" not in subscriptions.columns
    raw = pd.read_csv(ORDER_LINES / "usage.csv", dtype=str, keep_default_na=False)
    subs = pd.read_csv(ORDER_LINES / "subscriptions.csv", dtype=str)
    owner = subs.set_index("Subscription ID")["Customer ID"]
    expected = raw["Subscription ID"].map(owner).dropna()
    assert list(usage["account_id"]) == list(expected)
    assert usage["value"].sum() == raw.loc[expected.index, "Value"].astype(float).sum()
    warnings = order_lines.report.warnings
    unknown = next(p for p in warnings if "not in subscriptions" in p.message)
    assert unknown.n_rows == 3 and unknown.rows == [135, 136, 137]
    assert unknown.column == "Subscription ID"
    assert '(e.g. "SUB-901", "SUB-902")' in unknown.message
    blank = next(p for p in warnings if "no subscription_id" in p.message)
    assert blank.n_rows == 1 and blank.rows == [138] and blank.message.startswith("1 row has")
    assert any(
        "account_id looked up through subscriptions.subscription_id: 133 of 137 rows matched, "
        "4 left out" in line
        for line in _messages(order_lines.report, "info")
    )


ACCOUNTS = "Account ID,Industry\nA1,SaaS\nA2,Retail\n"
ORDERS = (
    "Order ID,Account ID,Stage,Date,Amount\n"
    "O1,A1,Won,2024-01-05,100\n"
    "O1,A1,Won,2024-01-05,250\n"
    "O2,A2,Lost,2024-02-01,80\n"
    "O2,A2,Won,2024-02-01,20\n"
    "O3,A2,Won,2024-03-01,\n"
)
ORDERS_CONFIG = """
[tables.accounts]
path = "accounts.csv"
[tables.accounts.columns]
account_id = "Account ID"
[tables.opportunities]
path = "orders.csv"
{line_items}
[tables.opportunities.columns]
opportunity_id = "Order ID"
account_id = "Account ID"
stage = "Stage"
created_at = "Date"
amount = "Amount"
"""


def test_repeated_ids_without_line_items_name_the_setting(tmp_path):
    config = write_project(
        tmp_path,
        {"accounts.csv": ACCOUNTS, "orders.csv": ORDERS},
        ORDERS_CONFIG.format(line_items=""),
    )
    errors = validate(config).lines("error")
    assert len(errors) == 1, errors
    assert 'opportunity_id values occur more than once (e.g. "O1")' in errors[0]
    assert "set line_items = true under [tables.opportunities]" in errors[0]


def test_lines_that_disagree_are_an_error_naming_the_deal_and_the_fix(tmp_path, capsys):
    config = write_project(
        tmp_path,
        {"accounts.csv": ACCOUNTS, "orders.csv": ORDERS},
        ORDERS_CONFIG.format(line_items="line_items = true"),
    )
    assert main(["validate", "--config", str(config)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert errors == [
        'error: orders.csv, column "Stage": 1 opportunity_id values have line items that '
        'disagree on stage (e.g. "O2": "Lost", "Won") (rows 4, 5); fix: the lines of one deal '
        "must carry the same stage: fix those rows in the export"
    ]


def test_lines_that_agree_are_summed_and_blank_amounts_stay_blank(tmp_path):
    orders = ORDERS.replace("O2,A2,Lost", "O2,A2,Won")
    config = write_project(
        tmp_path,
        {"accounts.csv": ACCOUNTS, "orders.csv": orders},
        ORDERS_CONFIG.format(line_items="line_items = true"),
    )
    deals = load_tables(config).tables["opportunities"].set_index("opportunity_id")
    assert deals.loc[["O1", "O2"], "amount"].tolist() == [350.0, 100.0]
    assert pd.isna(deals.loc["O3", "amount"])
    assert deals.loc["O2", "stage"] == "won"


# -- config checks -----------------------------------------------------------------------------


def _tables(**extra) -> dict:
    tables = {
        "accounts": {"path": "a.csv", "columns": {"account_id": "ID"}},
        "subscriptions": {
            "path": "s.csv",
            "columns": {
                "subscription_id": "Sub",
                "account_id": "ID",
                "start_date": "S",
                "arr": "A",
            },
        },
        "usage": {
            "path": "u.csv",
            "account_id_from": "subscriptions.subscription_id",
            "columns": {"subscription_id": "Sub", "date": "D", "metric": "M", "value": "V"},
        },
    }
    for name, spec in extra.items():
        tables[name] = {**tables.get(name, {}), **spec}
    return {"tables": tables}


def test_a_lookup_and_a_constant_parse():
    cfg = config_from_dict(
        {
            **_tables(),
            "tables": {
                **_tables()["tables"],
                "opportunities": {
                    "path": "o.csv",
                    "line_items": True,
                    "columns": {"opportunity_id": "Order", "stage": {"value": "won"}},
                },
            },
        }
    )
    assert cfg.tables["usage"].account_id_from == ("subscriptions", "subscription_id")
    assert cfg.tables["usage"].lookup_keys == ("subscription_id",)
    assert cfg.tables["subscriptions"].lookup_keys == ("subscription_id",)
    assert cfg.tables["opportunities"].constants == {"stage": "won"}
    assert cfg.tables["opportunities"].line_items is True
    assert cfg.scoring["outcome"] is None  # chosen from the data unless set


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"usage": {"account_id_from": "subscription.subscription_id"}},
            "unknown table 'subscription'; did you mean 'subscriptions'?",
        ),
        (
            {"usage": {"account_id_from": "subscriptions"}},
            'must name a table and its key column, e.g. account_id_from = "subscriptions.',
        ),
        (
            {"usage": {"account_id_from": "nps.subscription_id"}},
            "there is no [tables.nps]; add it (with subscription_id and account_id mapped)",
        ),
        (
            {
                "usage": {
                    "account_id_from": "subscriptions.sub_id",
                    "columns": {"date": "D", "metric": "M", "value": "V"},
                },
                "subscriptions": {"columns": {"account_id": "ID", "start_date": "S", "arr": "A"}},
            },
            'needs sub_id mapped in both tables: add sub_id = "<column>" under '
            "[tables.subscriptions.columns]",
        ),
        (
            {"usage": {"columns": {"subscription_id": "Sub", "account_id": "ID"}}},
            "both account_id and account_id_from",
        ),
        (
            {"accounts": {"account_id_from": "subscriptions.subscription_id"}},
            "account_id_from cannot be used on accounts",
        ),
        (
            {"subscriptions": {"line_items": True}},
            "line_items = true is for [tables.opportunities]",
        ),
        (
            {"usage": {"line_items": "yes"}},
            "line_items = 'yes' must be true or false",
        ),
        (
            {
                "subscriptions": {
                    "columns": {"account_id": "ID", "start_date": "S", "arr": {"valu": 1}}
                }
            },
            "unknown key 'valu'; did you mean 'value'?",
        ),
        (
            {"subscriptions": {"columns": {"account_id": {"value": "A1"}, "start_date": "S"}}},
            "account_id cannot be the same on every row (it is a key)",
        ),
        (
            {
                "subscriptions": {
                    "columns": {"account_id": "ID", "start_date": "S", "arr": {"value": [1]}}
                }
            },
            "must hold one text, number, date or true/false",
        ),
    ],
)
def test_config_mistakes_are_one_line_with_the_fix(change, message):
    with pytest.raises(ConfigError) as error:
        config_from_dict(_tables(**change))
    assert any(message in problem for problem in error.value.problems), error.value.problems


def test_a_key_that_matches_nothing_is_an_error(tmp_path):
    files = {
        "a.csv": "ID\nA1\nA2\n",
        "s.csv": "Sub,ID,S,A\nS1,A1,2024-01-01,100\nS2,A2,2024-02-01,200\n",
        "u.csv": "Sub,D,M,V\nX1,2024-03-01,logins,3\nX2,2024-03-01,logins,4\n",
    }
    config = write_project(tmp_path, files, "")
    cfg = config_from_dict(_tables(), config)
    errors = validate(cfg).lines("error")
    assert errors == [
        'u.csv, column "Sub": none of the 2 subscription_id values are in subscriptions (e.g. '
        '"X1", "X2"), so no row can be given an account; fix: map the same subscription_id in '
        "both tables: check subscription_id under [tables.usage.columns] and "
        "[tables.subscriptions.columns]"
    ]


def test_a_key_owned_by_two_accounts_is_an_error(tmp_path):
    files = {
        "a.csv": "ID\nA1\nA2\n",
        "s.csv": "Sub,ID,S,A\nS1,A1,2024-01-01,100\nS1,A2,2024-02-01,200\n",
        "u.csv": "Sub,D,M,V\nS1,2024-03-01,logins,3\n",
    }
    config = write_project(tmp_path, files, "")
    errors = validate(config_from_dict(_tables(), config)).lines("error")
    assert len(errors) == 1
    assert errors[0].startswith(
        's.csv, column "Sub": 1 subscription_id values belong to more than one account '
        '(e.g. "S1": "A1", "A2")'
    )


# -- encodings ---------------------------------------------------------------------------------


def test_mac_roman_read_as_cp1252_is_a_warning_naming_the_cells_and_the_encoding(capsys):
    assert main(["validate", "--config", str(MAC_ROMAN / "icp.toml")]) == 0
    out = capsys.readouterr().out
    assert (
        'warning: accounts.csv, column "City": 4 values look wrongly decoded (e.g. "San JosŽ"): '
        'the file may not be cp1252 text (rows 2, 3, 5, 7); fix: set encoding = "mac_roman" '
        "under [tables.accounts], then validate again"
    ) in out


def test_an_undecodable_file_suggests_the_encoding_that_reads_it_cleanly(tmp_path):
    config = tmp_path / "icp.toml"
    text = (MAC_ROMAN / "icp.toml").read_text(encoding="utf-8").replace('encoding = "cp1252"', "")
    config.write_text(
        text.replace('path = "accounts.csv"', f'path = "{MAC_ROMAN / "accounts.csv"}"')
    )
    errors = validate(config).lines("error")
    assert errors == [
        "accounts.csv: is not utf-8 text (undecodable byte at line 2); fix: add encoding = "
        '"mac_roman" under [tables.accounts]: it reads the file with no sign of a wrong decoding'
    ]


def test_the_right_encoding_loads_the_names_intact():
    cfg = load_config(MAC_ROMAN / "icp.toml")
    cfg.tables["accounts"].encoding = "mac_roman"
    data = load_tables(cfg)
    assert list(data.tables["accounts"]["city"]) == [
        "San José",
        "Zürich",
        "Boston",
        "Málaga",
        "Austin",
        "San José",
    ]
    assert not data.report.warnings


@pytest.mark.parametrize(
    "text, saved_as, best",
    [
        ("San José, Zürich, Málaga", "mac_roman", "mac_roman"),
        ("San José, Zürich, Málaga", "cp1252", "cp1252"),
        ("San José, Zürich, Málaga", "utf-8", "utf-8"),
        ("Crème brûlée, naïve café", "mac_roman", "mac_roman"),
    ],
)
def test_encodings_are_ranked_by_signs_of_a_wrong_decoding(text, saved_as, best):
    raw = text.encode(saved_as)
    assert rank_encodings(raw)[0] == (best, 0)
    assert clean_encodings(raw)[0] == best


def test_real_text_is_not_mistaken_for_a_wrong_decoding():
    for text in ("O’Brien & Co", "Acme™ Inc", "1990–2000", "Škoda", "Straße", "São Paulo", "ÉCOLE"):
        assert mojibake_count(text) == 0, text
    for text in ("San JosŽ", "ZŸrich", "M‡laga", "CafÃ©", "donâ€™t", "Jos\x8e"):
        assert mojibake_count(text) > 0, text


# -- the default scoring outcome ---------------------------------------------------------------


def test_the_outcome_is_chosen_from_what_the_data_can_measure(order_lines):
    from icp_research.analyses.blueprint import build_blueprint
    from icp_research.data.study import Study

    chosen = build_blueprint(
        Study(order_lines), backtest_quarters=0, n_boot=50, reuse_artifacts=False
    )
    assert chosen.outcome["name"] == "retained"
    sentence = (
        "Success is measured as 12-month retention ([scoring] outcome is not set, chosen from "
        "the data up to 2025-06-30): all 85 closed deals were won, so wins cannot be compared; "
        "5 of 30 customers churned within 12 months. Set [scoring] outcome to choose another."
    )
    assert chosen.outcome["chosen"] == sentence and sentence in chosen.caveats
    order_lines.config.scoring["outcome"] = "won"
    try:
        told = build_blueprint(
            Study(order_lines), backtest_quarters=0, n_boot=50, reuse_artifacts=False
        )
    finally:
        order_lines.config.scoring["outcome"] = None
    assert told.outcome["name"] == "won" and "chosen" not in told.outcome


def _sample(y):
    from types import SimpleNamespace

    y = pd.Series(y, dtype=float)
    return SimpleNamespace(
        training=pd.DataFrame({"y": y[:-1]}), holdout=pd.DataFrame({"y": y[-1:]})
    )


@pytest.mark.parametrize(
    "samples, outcome, words",
    [
        ({"won": [1, 0, 0, 1], "retained": [1, 0]}, "won", "4 closed new-business deals, 2 won"),
        ({"won": [1, 1], "retained": [1, 0, 1]}, "retained", "1 of 3 customers churned"),
        ({"retained": [1, 0]}, "retained", "there are no closed new-business deals"),
        (
            {"won": [0, 0], "retained": [1, 1], "best_customer": [1, 0]},
            "best_customer",
            "all 2 closed deals were lost and retention does not vary",
        ),
        ({"best_customer": [1, 0]}, "best_customer", "churn cannot be measured"),
    ],
)
def test_the_outcome_rule(samples, outcome, words):
    from icp_research.analyses.blueprint.build import _data_outcome

    name, sentence = _data_outcome({k: _sample(v) for k, v in samples.items()})
    assert name == outcome and words in sentence, sentence


# -- Accounts named, not keyed ------------------------------------------------------------------

NAMED_ACCOUNTS = (
    "Record Id,Account Name,Industry\n"
    'z1,"Acme, Inc.",X\nz2,Beta GmbH,Y\nz3,Gamma,Z\nz4,Gamma,Z\nz5,Délta & Co,Q\n'
)
NAMED_DEALS = (
    "Deal,Account Name.id,Account Name,Stage,Created\n"
    'D1,z1,"Acme, Inc.",Closed Won,2024-01-01\n'  # exact
    "D2,,ACME INC,Closed Lost,2024-01-01\n"  # case, punctuation, legal form
    "D3,,beta,Closed Won,2024-01-01\n"
    "D4,z4,Gamma,Closed Won,2024-01-01\n"  # two accounts of that name (and its id)
    "D5,,Unknown Ltd,Closed Won,2024-01-01\n"
    "D6,,delta and co.,Closed Won,2024-01-01\n"  # accent, "&"
    "D7,z3,,Closed Won,2024-01-01\n"  # the id alone
)
NAMED_CONFIG = """
[tables.accounts]
path = "accounts.csv"
[tables.accounts.columns]
account_id = "Record Id"
name = "Account Name"
[tables.opportunities]
path = "deals.csv"
account_id_from = "accounts.name"
[tables.opportunities.columns]
{id}name = "Account Name"
opportunity_id = "Deal"
stage = "Stage"
created_at = "Created"
[tables.opportunities.values.stage]
"Closed Won" = "won"
"Closed Lost" = "lost"
"""


def test_rows_that_name_their_account_are_matched_by_name(tmp_path):
    files = {"accounts.csv": NAMED_ACCOUNTS, "deals.csv": NAMED_DEALS}
    dataset = load_tables(write_project(tmp_path, files, NAMED_CONFIG.format(id="")))
    deals = dataset.tables["opportunities"].set_index("opportunity_id")["account_id"]
    # A deal at a company the accounts table lacks is a deal all the same: its account is the
    # name (the win rate would otherwise be that of the accounts the table holds).
    assert deals.to_dict() == {"D1": "z1", "D2": "z1", "D3": "z2", "D5": "Unknown Ltd", "D6": "z5"}
    assert dataset.tables["accounts"]["name"].tolist()[:2] == ["Acme, Inc.", "Beta GmbH"]
    assert "name" not in dataset.tables["opportunities"]
    problems = [
        (p.level, p.message, p.rows) for p in dataset.report.problems if p.column == "Account Name"
    ]
    assert problems == [
        (
            "info",
            "3 rows name their account differently from the accounts table; each was matched "
            "to the one account whose name is the same once case, accents, punctuation and "
            'legal forms (Inc., GmbH, Ltd ...) are set aside (e.g. "ACME INC" -> "Acme, Inc.")',
            [3, 4, 7],
        ),
        (
            "warning",
            '1 row has a name that several accounts share (e.g. "Gamma"), so no one account: '
            "left out of every analysis",
            [5],
        ),
        ("warning", "1 row has no name, so no account: left out of every analysis", [8]),
        (
            "warning",
            '1 row has a name that is not in accounts (17%; e.g. "Unknown Ltd"): each such '
            "company counts as an account of its own in the deal totals (win rate, sales "
            "cycle), with no traits, so the analyses by trait leave them out",
            [6],
        ),
    ]


def test_the_id_where_given_and_the_name_where_it_is_blank(tmp_path):
    files = {"accounts.csv": NAMED_ACCOUNTS, "deals.csv": NAMED_DEALS}
    config = NAMED_CONFIG.format(id='account_id = "Account Name.id"\n')
    dataset = load_tables(write_project(tmp_path, files, config))
    deals = dataset.tables["opportunities"].set_index("opportunity_id")["account_id"]
    # D4 names a shared name but carries its id; D7 has only its id.
    assert deals.to_dict() == {
        "D1": "z1",
        "D2": "z1",
        "D3": "z2",
        "D4": "z4",
        "D5": "Unknown Ltd",
        "D6": "z5",
        "D7": "z3",
    }
    (note,) = [p.message for p in dataset.report.infos if "looked up through" in p.message]
    assert note == (
        "account_id looked up through accounts.name for the 4 rows without one: 3 of 4 rows "
        "matched, 1 kept under their own name"
    )


# -- Invoices as billing ----------------------------------------------------------------------

INVOICES = """Date,Transaction Type,Customer,Product/Service,Amount
01/15/2025,Invoice,Acme,Pro plan - monthly,100.00
02/15/2025,Invoice,Acme,Pro plan - monthly,100.00
03/15/2025,Invoice,Acme,Pro plan - monthly,100.00
03/15/2025,Invoice,Acme,Onboarding,"1,500.00"
04/15/2025,Invoice,Acme,Pro plan - monthly,150.00
05/15/2025,Invoice,Acme,Pro plan - monthly,150.00
06/15/2025,Invoice,Acme,Pro plan - monthly,150.00
01/10/2025,Invoice,Beta Inc.,Pro plan - annual,"1,200.00"
01/10/2026,Invoice,Beta Inc.,Pro plan - annual,"1,200.00"
02/01/2025,Invoice,Gamma,Pro plan - monthly,50.00
03/01/2025,Invoice,Gamma,Pro plan - monthly,50.00
03/05/2025,Credit Memo,Gamma,Pro plan - monthly,-50.00
09/01/2025,Invoice,Gamma,Pro plan - monthly,50.00
10/01/2025,Invoice,Gamma,Pro plan - monthly,50.00
12/20/2025,Invoice,Gamma,Pro plan - monthly,50.00
"""
INVOICES_CONFIG = """
[tables.accounts]
path = "accounts.csv"
[tables.accounts.columns]
account_id = "id"
name = "name"
[tables.subscriptions]
path = "invoices.csv"
invoices = true
date_format = "%m/%d/%Y"
account_id_from = "accounts.name"
drop = ["Transaction Type"]
[tables.subscriptions.columns]
name = "Customer"
start_date = "Date"
price = "Amount"
interval = "Product/Service"
[tables.subscriptions.values.interval]
"Pro plan - monthly" = "month"
"Pro plan - annual" = "year"
"Onboarding" = "drop"
"""


def test_invoices_become_subscriptions_by_their_rhythm(tmp_path):
    files = {"accounts.csv": "id,name\nA,Acme\nB,Beta\nG,Gamma\n", "invoices.csv": INVOICES}
    dataset = load_tables(write_project(tmp_path, files, INVOICES_CONFIG))
    subs = dataset.tables["subscriptions"]
    got = [
        (
            r.account_id,
            f"{r.start_date:%Y-%m-%d}",
            r.arr,
            "" if pd.isna(r.end_date) else f"{r.end_date:%Y-%m-%d}",
        )
        for r in subs.itertuples()
    ]
    assert got == [
        # 100 a month, then 150 from April: one ends the day the other starts; the last
        # invoice (June 15) pays through July 15, long before the latest invoice.
        ("A", "2025-01-15", 1200.0, "2025-04-15"),
        ("A", "2025-04-15", 1800.0, "2025-07-15"),
        # Yearly, renewed on time: still running at the latest invoice (2026-01-10).
        ("B", "2025-01-10", 1200.0, ""),
        # A gap of six months ends a subscription (paid through April 1) and starts another;
        # December 20 is 2.6 months after October 1: a third, still running (not yet due).
        ("G", "2025-02-01", 600.0, "2025-04-01"),
        ("G", "2025-09-01", 600.0, "2025-11-01"),
        ("G", "2025-12-20", 600.0, ""),
    ]
    infos = [p.message for p in dataset.report.infos]
    assert (
        "invoices = true: 13 invoice rows became 6 subscriptions (2 still running at the latest "
        "invoice, 2026-01-10): invoices at most an interval apart (a quarter of one late, a month at most) are one subscription, a "
        "change of amount starts the next, and one ends an interval after its last invoice; 1 "
        "line with no positive amount (credit notes, zero lines) left out"
    ) in infos
    assert 'row whose interval is recoded to "drop"' in " ".join(infos)


def test_invoices_need_a_price_and_its_interval(tmp_path):
    files = {"accounts.csv": "id,name\nA,Acme\n", "invoices.csv": INVOICES}
    config = INVOICES_CONFIG.replace('interval = "Product/Service"\n', "")
    config = config[: config.index("[tables.subscriptions.values")]
    report = validate(write_project(tmp_path, files, config))
    assert [p.message for p in report.errors] == [
        "invoices = true, but price and interval are not both mapped: each invoice's amount "
        "and the interval it bills are what its subscription is read from"
    ]
    with pytest.raises(ConfigError, match="invoices = true is for"):
        load_config(
            write_project(
                tmp_path / "deals",
                {},
                '[tables.accounts]\npath = "a.csv"\n[tables.opportunities]\npath = "d.csv"\n'
                "invoices = true\n",
            )
        )


SHIFT_JIS = FIXTURES / "exports" / "shift_jis"


def test_a_japanese_shift_jis_export_loads_with_its_yen_and_its_planted_win_rates(tmp_path):
    """A Japanese Excel's CSVs (cp932, Japanese headers and values, "￥1,200,000" and
    "1,200,000円"): without the encoding the fix names cp932; with it, every amount is read in
    yen and the win rates by industry are the export's own (製造業 wins about twice as often)."""
    import shutil

    import icp_research as icp
    from icp_research.analyses import deals as deal_analysis
    from icp_research.data import loading

    project = tmp_path / "shift_jis"
    shutil.copytree(SHIFT_JIS, project)
    config = project / "icp.toml"
    plain = config.read_text(encoding="utf-8").replace('encoding = "cp932"\n', "")
    (project / "plain.toml").write_text(plain, encoding="utf-8")
    report = loading.load_dataset(project / "plain.toml").report
    assert {p.fix.split(":")[0] for p in report.errors} == {
        f'add encoding = "cp932" under [tables.{t}]'
        for t in ("accounts", "opportunities", "subscriptions")
    }
    dataset = loading.load_dataset(config)
    assert not dataset.report.errors and dataset.currency == "¥"
    raw = pd.read_csv(project / "deals.csv", encoding="cp932", dtype=str)
    amounts = raw["金額"].str.replace("￥", "").str.replace(",", "").astype(float)
    deals = dataset.tables["opportunities"].set_index("opportunity_id")
    assert deals.loc[raw["商談ID"], "amount"].tolist() == amounts.tolist()
    contracts = pd.read_csv(project / "contracts.csv", encoding="cp932", dtype=str)
    yearly = contracts["年額"].str.replace("円", "").str.replace(",", "").astype(float)
    assert dataset.tables["subscriptions"]["arr"].sum() == yearly.sum()
    study = icp.open_study(config, reuse_snapshot=False)
    table = deal_analysis.lost_deal_analysis(study).summary.set_index(["attribute", "level"])
    manufacturing = table.loc[("industry", "製造業")]
    accounts = pd.read_csv(project / "accounts.csv", encoding="cp932", dtype=str)
    closed = raw[raw["フェーズ"] != "商談中"].merge(accounts, on="会社ID")
    closed = closed[pd.to_datetime(closed["完了予定日"]) <= study.as_of]
    ours = closed[closed["業種"] == "製造業"]
    assert manufacturing["deals"] == len(ours)
    assert manufacturing["rate"] == pytest.approx((ours["フェーズ"] == "受注").mean())
    assert manufacturing["significant"] and manufacturing["rate"] > 0.4


def test_invoices_that_state_the_period_they_bill_need_no_interval(tmp_path):
    """German invoices state their service period (Leistungszeitraum von / bis), not an
    interval: mapped as start_date and end_date, the period's length is the interval (the end
    inclusive, or the next period's first day), and the subscriptions are those an interval
    column gives."""
    rows = [
        ("A", "2025-01-15", "2025-02-14", 100),
        ("A", "2025-02-15", "2025-03-14", 100),
        ("A", "2025-03-15", "2025-04-15", 100),  # the next period's first day as its end
        ("B", "2025-01-10", "2026-01-09", 1200),
        ("B", "2026-01-10", "2027-01-09", 1200),
        ("G", "2025-02-01", "2025-04-30", 300),
    ]
    stated = "Kunde;von;bis;Netto\n" + "".join(f"{a};{s};{e};{n}\n" for a, s, e, n in rows)
    named = {"A": "month", "B": "year", "G": "quarter"}
    given = "Kunde;von;Netto;Intervall\n" + "".join(
        f"{a};{s};{n};{named[a]}\n" for a, s, _, n in rows
    )
    base = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\naccount_id = "id"\n'
        '[tables.subscriptions]\npath = "invoices.csv"\ninvoices = true\n'
        "[tables.subscriptions.columns]\n"
        'account_id = "Kunde"\nstart_date = "von"\nprice = "Netto"\n'
    )
    accounts = "id,name\nA,Acme\nB,Beta\nG,Gamma\n"
    by_period = load_tables(
        write_project(
            tmp_path / "period",
            {"accounts.csv": accounts, "invoices.csv": stated},
            base + 'end_date = "bis"\n',
        )
    )
    by_interval = load_tables(
        write_project(
            tmp_path / "interval",
            {"accounts.csv": accounts, "invoices.csv": given},
            base + 'interval = "Intervall"\n',
        )
    )
    columns = ["account_id", "start_date", "end_date", "arr"]
    pd.testing.assert_frame_equal(
        by_period.tables["subscriptions"][columns], by_interval.tables["subscriptions"][columns]
    )
    assert by_period.tables["subscriptions"]["arr"].tolist() == [1200.0, 1200.0, 1200.0]
    (note,) = [p for p in by_period.report.infos if "the period it bills" in p.message]
    assert note.message.endswith("(3 month, 2 year, 1 quarter)")
    # A period of another length is named with its rows.
    odd = stated.replace("2025-02-01;2025-04-30", "2025-02-01;2025-02-20")
    report = validate(
        write_project(
            tmp_path / "odd",
            {"accounts.csv": accounts, "invoices.csv": odd},
            base + 'end_date = "bis"\n',
        )
    )
    (error,) = report.errors
    assert error.message.startswith(
        "1 invoice bills a period that is not a week, month, quarter, half-year or year "
        "(e.g. 2025-02-01 to 2025-02-20)"
    )
    assert error.rows == [7]
