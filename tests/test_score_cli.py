"""``icp-research score``: every row back, scored as far as possible, flagged, never dropped."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from icp_research.artifacts import write_json
from icp_research.cli import main
from icp_research.errors import ConfigError, DataError
from icp_research.scoring.model import (
    SCORE_COLUMNS,
    read_leads,
    rule_hits,
    score_file,
    score_leads,
)
from icp_research.scoring.schema import icp_problem
from icp_research.scoring.scorecard import fit_scorecard

from .conftest import run_cli, write_project

INDUSTRIES = ["FinTech", "SaaS", "Retail", "Education"]


def _deals(rng, n: int = 4000) -> pd.DataFrame:
    industry = rng.choice(INDUSTRIES, n)
    employees = np.round(np.exp(rng.normal(5.3, 1.3, n)))
    crm = rng.choice(["HubSpot", "Salesforce", "None"], n)
    logit = (
        -1.2
        + np.select(
            [industry == "FinTech", industry == "SaaS", industry == "Education"], [1, 0.8, -0.8], 0
        )
        + 0.8 * ((employees >= 100) & (employees < 1000))
        - 0.7 * (crm == "None")
    )
    return pd.DataFrame(
        {
            "industry": industry,
            "employees": employees,
            "crm": crm,
            "won": rng.random(n) < 1 / (1 + np.exp(-logit)),
        }
    )


@pytest.fixture(scope="module")
def icp_document():
    rng = np.random.default_rng(5)
    scorecard = fit_scorecard(
        _deals(rng),
        "won",
        categorical=["industry", "crm"],
        numeric=["employees"],
        tiers=[("Tier 1", 70), ("Tier 2", 40), ("Tier 3", 0)],
    )
    return {
        "format": 1,
        **scorecard.to_dict(),
        "statement": "This product fits mid-size FinTech and SaaS companies.",
        "rules": {
            "include": [
                {
                    "id": "include:industry",
                    "kind": "include",
                    "role": "filter",
                    "text": "industry in {FinTech, SaaS}",
                    "conditions": [
                        {"attribute": "industry", "operator": "in", "value": ["FinTech", "SaaS"]}
                    ],
                },
                {
                    "id": "include:employees",
                    "kind": "include",
                    "role": "filter",
                    "text": "100 <= employees < 1,000",
                    "conditions": [
                        {"attribute": "employees", "operator": "between", "value": [100, 1000]}
                    ],
                },
            ],
            "exclude": [
                {
                    "id": "exclude:crm",
                    "kind": "exclude",
                    "text": "crm = None",
                    "conditions": [{"attribute": "crm", "operator": "equals", "value": "None"}],
                },
                {
                    "id": "exclude:revenue",
                    "kind": "exclude",
                    "text": "annual_revenue < 8,000,000",
                    "conditions": [
                        {"attribute": "annual_revenue", "operator": "less_than", "value": 8e6}
                    ],
                },
            ],
            "uncertain": [],
        },
        "attributes": {
            "industry": {"type": "categorical"},
            "crm": {"type": "categorical"},
            "employees": {"type": "numeric", "nonnegative": True},
            "annual_revenue": {"type": "numeric", "nonnegative": True},
        },
    }


@pytest.fixture
def icp_path(tmp_path, icp_document):
    return write_json(icp_document, tmp_path / "icp.json")


MESSY = """company,industry,employees,crm,annual_revenue
Acme,SaaS,250,HubSpot,20000000
Beta, fintech ,"1,200", salesforce ,$3.4M
Gamma,Aerospace,-5,None,
Delta,,,,
"=HYPERLINK(""http://x"")",Education,30,None,1000000
Zeta,SaaS,51-200,NONE,abc
"""


def test_unseen_blank_and_negative_values_are_scored_and_flagged(tmp_path, icp_path):
    leads_path = tmp_path / "leads.csv"
    leads_path.write_text(MESSY, encoding="utf-8")
    out = tmp_path / "scored.csv"
    assert (
        main(["score", "--icp", str(icp_path), "--input", str(leads_path), "--output", str(out)])
        == 0
    )
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    # Every row back, in order, input columns untouched, score columns appended.
    assert len(scored) == 6
    assert list(scored.columns) == [
        "company",
        "industry",
        "employees",
        "crm",
        "annual_revenue",
        *SCORE_COLUMNS,
    ]
    assert list(scored["company"][[0, 1, 2, 3, 5]]) == ["Acme", "Beta", "Gamma", "Delta", "Zeta"]
    assert scored.loc[1, "employees"] == "1,200"
    rows = scored.set_index("company")
    # Unseen category and a negative employee count: neutral points, said in the flags.
    assert "industry 'Aerospace' unseen in training: scored neutral" in rows.loc["Gamma", "flags"]
    assert (
        "employees negative (-5): treated as missing, scored neutral" in rows.loc["Gamma", "flags"]
    )
    # Blanks everywhere: neutral on every attribute, still a score, but the tier says the
    # score knows nothing about the lead (not the tier a neutral score falls in).
    assert "employees missing" in rows.loc["Delta", "flags"]
    assert "industry missing" in rows.loc["Delta", "flags"]
    assert rows.loc["Delta", "tier"] == "Unknown"
    assert "nothing the score reads is known: tier Unknown" in rows.loc["Delta", "flags"]
    assert rows.loc["Delta", "fit_score"] != ""
    # Its win probability would be the neutral score's: empty, as known leads' are filled.
    assert rows.loc["Delta", "win_probability"] == ""
    # Gamma's industry is unseen, its employees unreadable, but its crm is known: a tier.
    assert rows.loc["Gamma", "tier"] in ("Tier 1", "Tier 2", "Tier 3")
    assert rows.loc["Delta", "rules_hit"] == "" and rows.loc["Delta", "in_icp"] == "False"
    # Case and spaces do not hide a known value, for points and for rules alike.
    assert "industry = FinTech" in rows.loc["Beta", "reasons_positive"]
    assert "include: industry in {FinTech, SaaS}" in rows.loc["Beta", "rules_hit"]
    assert "exclude: crm = None" in rows.loc["Zeta", "rules_hit"]
    # A range is read at its lower end; unreadable numbers that only rules use are flagged.
    assert "employees '51-200' is a range" in rows.loc["Zeta", "flags"]
    assert (
        "annual_revenue 'abc' is not a number: rules on annual_revenue not met"
        in (rows.loc["Zeta", "flags"])
    )
    assert rows.loc["Acme", "in_icp"] == "True" and rows.loc["Acme", "flags"] == ""
    assert "exclude: annual_revenue < 8,000,000" in rows.loc["Beta", "rules_hit"]
    # A formula-like cell is neutralised for spreadsheets.
    assert scored.loc[4, "company"].startswith("'=HYPERLINK")


def test_scores_match_the_engine_and_are_deterministic(icp_document):
    rng = np.random.default_rng(9)
    leads = _deals(rng, 500).drop(columns="won")
    first = score_leads(icp_document, leads)
    second = score_leads(icp_document, leads.sample(frac=1, random_state=1))
    assert first.equals(second.loc[first.index])
    assert first["fit_score"].between(0, 100).all()
    hits = rule_hits(leads, icp_document)
    in_icp = hits[["include:industry", "include:employees"]].all(axis=1) & ~hits[
        ["exclude:crm", "exclude:revenue"]
    ].any(axis=1)
    assert (first["in_icp"] == in_icp).all()


def test_refuses_to_overwrite_without_force(tmp_path, icp_path, capsys):
    leads_path = tmp_path / "leads.csv"
    leads_path.write_text(MESSY, encoding="utf-8")
    out = tmp_path / "scored.csv"
    out.write_text("keep me", encoding="utf-8")
    args = ["score", "--icp", str(icp_path), "--input", str(leads_path), "--output", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists; pass --force" in err[0]
    assert out.read_text() == "keep me"
    assert main([*args, "--force"]) == 0
    assert out.read_text().startswith('"company","industry"')


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, "file not found"),
        ("empty.csv", "", "empty"),
        ("binary.csv", b"\x00\x01\x02PK", "binary"),
        ("broken.csv", 'a,b\n"1,2\n3,4,5,6\n', "not a well-formed CSV"),
        ("leads.json", "{}", "unsupported file type"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, icp_path, capsys, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    code = main(
        ["score", "--icp", str(icp_path), "--input", str(path), "--output", str(tmp_path / "o.csv")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o.csv").exists()


def test_bad_icp_file_is_exit_2(tmp_path, icp_document, capsys):
    leads = tmp_path / "leads.csv"
    leads.write_text(MESSY, encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}), encoding="utf-8")
    no_score = tmp_path / "no_score.json"
    no_score.write_text(
        json.dumps({**icp_document, "scorecard": None, "statement": "No ICP can be drawn yet."}),
        encoding="utf-8",
    )
    for path, message in (
        (broken, "not valid JSON"),
        (other, "not an ICP file"),
        (no_score, "holds no fit score"),
    ):
        code = main(
            [
                "score",
                "--icp",
                str(path),
                "--input",
                str(leads),
                "--output",
                str(tmp_path / "o.csv"),
            ]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err


def test_parquet_and_excel_in_parquet_out(tmp_path, icp_path, icp_document):
    leads = pd.DataFrame(
        {
            "industry": ["SaaS", "Retail", None],
            "employees": [300.0, -3.0, np.nan],
            "crm": ["HubSpot", "None", "Salesforce"],
        }
    )
    leads.to_parquet(tmp_path / "leads.parquet")
    leads.to_excel(tmp_path / "leads.xlsx", index=False)
    for name in ("leads.parquet", "leads.xlsx"):
        out = tmp_path / f"{name}.scored.parquet"
        summary = score_file(icp=icp_path, input=tmp_path / name, output=out)
        assert "Scored 3 rows" in summary
        scored = pd.read_parquet(out)
        assert len(scored) == 3 and scored["fit_score"].between(0, 100).all()
        assert "employees negative (-3)" in scored.loc[1, "flags"]
        expected = score_leads(icp_document, leads)["fit_score"]
        assert list(scored["fit_score"]) == list(expected)


def test_config_maps_the_leads_columns(tmp_path, icp_path):
    config = write_project(
        tmp_path / "project",
        {"accounts.csv": "Account ID,Vertical,Headcount,CRM System\nA1,saas,10,HubSpot\n"},
        """
[tables.accounts]
path = "accounts.csv"
missing_values = ["n.a."]
[tables.accounts.columns]
account_id = "Account ID"
industry = "Vertical"
employees = "Headcount"
crm = "CRM System"
[tables.accounts.values.industry]
"saas" = "SaaS"
"fin tech" = "FinTech"
""",
    )
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "Account ID,Vertical,Headcount,CRM System\nL1,saas,250,HubSpot\nL2,fin tech,n.a.,None\n",
        encoding="utf-8",
    )
    frame = read_leads(leads, config)
    assert {"industry", "employees", "crm"} <= set(frame.columns)
    assert list(frame["industry"]) == ["SaaS", "FinTech"]
    out = tmp_path / "scored.csv"
    summary = score_file(icp=icp_path, input=leads, output=out, config=config)
    scored = pd.read_csv(out, keep_default_na=False)
    assert scored.loc[0, "in_icp"] and "industry = SaaS" in scored.loc[0, "reasons_positive"]
    assert "employees missing: scored neutral" in scored.loc[1, "flags"]
    assert "no annual_revenue column" in summary
    # The rows come back as they came in: the file's own headers and values.
    assert list(scored.columns[:4]) == ["Account ID", "Vertical", "Headcount", "CRM System"]
    assert list(scored["Vertical"]) == ["saas", "fin tech"]
    assert list(scored["Headcount"]) == ["250", "n.a."]


def test_missing_columns_are_named_in_the_summary(tmp_path, icp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text("name,industry\nA,SaaS\n", encoding="utf-8")
    summary = score_file(icp=icp_path, input=leads, output=tmp_path / "o.csv")
    assert "no annual_revenue, crm, employees column(s)" in summary
    scored = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert "crm not provided: scored neutral" in scored.loc[0, "flags"]


def test_read_leads_errors_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_leads(tmp_path / "nothing.csv")
    leads = tmp_path / "leads.csv"
    leads.write_text(MESSY, encoding="utf-8")
    with pytest.raises(ConfigError):
        read_leads(leads, tmp_path / "missing.toml")
    # "None" and "NA" are values, not blanks, in every format.
    frame = pd.DataFrame(
        {"name": ["a", "b", "c"], "crm": ["None", "NA", ""], "region": ["NA", "EMEA", None]}
    )
    frame.to_excel(tmp_path / "l.xlsx", index=False)
    frame.to_csv(tmp_path / "l.csv", index=False)
    for name in ("l.xlsx", "l.csv"):
        read = read_leads(tmp_path / name)
        assert list(read["crm"][:2]) == ["None", "NA"] and pd.isna(read["crm"][2])
        assert read["region"][0] == "NA"


def test_score_command_runs_as_a_user_runs_it(tmp_path, icp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text(MESSY, encoding="utf-8")
    out = tmp_path / "scored.parquet"
    result = run_cli("score", "--icp", str(icp_path), "--input", str(leads), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "Scored 6 rows of leads.csv" in result.stdout
    assert len(pd.read_parquet(out)) == 6


def _no_score_document(icp_document, **extra) -> dict:
    return {
        **icp_document,
        "scorecard": None,
        "outcome": {"name": "won"},
        "caveats": [
            "No fit score: no characteristic held up in the latest quarters, so points would "
            "rank accounts on noise."
        ],
        **extra,
    }


def test_no_fit_score_says_why_and_what_to_do_next(tmp_path, icp_document, capsys):
    leads = tmp_path / "leads.csv"
    leads.write_text(MESSY, encoding="utf-8")
    path = write_json(_no_score_document(icp_document), tmp_path / "icp.json")
    code = main(
        ["score", "--icp", str(path), "--input", str(leads), "--output", str(tmp_path / "o.csv")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0] == (
        "error: this icp.json holds no fit score, so there is nothing to score with: no "
        "characteristic held up in the latest quarters, so points would rank accounts on noise; "
        "next, rerun the ICP blueprint (icp-research run) once the exports hold more closed "
        "deals (won and lost); to use the ICP's rules meanwhile, score with --rules-only (marks "
        "in_icp and rules_hit, no fit score)"
    )
    assert not (tmp_path / "o.csv").exists()


def test_rules_only_marks_leads_without_a_score(tmp_path, icp_document, capsys):
    leads = tmp_path / "leads.csv"
    leads.write_text(MESSY, encoding="utf-8")
    path = write_json(_no_score_document(icp_document), tmp_path / "icp.json")
    out = tmp_path / "o.csv"
    args = ["score", "--icp", str(path), "--input", str(leads), "--output", str(out)]
    assert main([*args, "--rules-only"]) == 0
    summary = capsys.readouterr().out
    assert "Scored 6 rows of leads.csv" in summary and "rules only, no fit score" in summary
    scored = pd.read_csv(out, keep_default_na=False)
    assert len(scored) == 6 and (scored["fit_score"] == "").all() and (scored["tier"] == "").all()
    # Acme: SaaS, 250 employees, HubSpot, $20M: meets both include rules and no exclude rule.
    assert scored["in_icp"].tolist() == [True, False, False, False, False, False]
    assert scored.loc[0, "rules_hit"] == (
        "include: industry in {FinTech, SaaS}; include: 100 <= employees < 1,000"
    )


def test_rules_only_without_rules_is_exit_2(tmp_path, icp_document, capsys):
    leads = tmp_path / "leads.csv"
    leads.write_text(MESSY, encoding="utf-8")
    empty = {"include": [], "exclude": [], "uncertain": []}
    path = write_json(_no_score_document(icp_document, rules=empty), tmp_path / "icp.json")
    args = ["score", "--icp", str(path), "--input", str(leads), "--output", str(tmp_path / "o.csv")]
    assert main([*args, "--rules-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no rules to mark leads with" in err[0], err
    assert "--rules-only" not in err[0]


@pytest.mark.parametrize("encoding", ["mac_roman", "cp1252"])
def test_a_lead_file_that_is_not_utf8_is_read_without_garbling(tmp_path, encoding):
    path = tmp_path / "leads.csv"
    path.write_bytes("name,city\nA,San José\nB,Zürich\nC,Málaga\n".encode(encoding))
    assert read_leads(path)["city"].tolist() == ["San José", "Zürich", "Málaga"]


def test_a_japanese_lead_file_is_read_and_written_for_excel(tmp_path, icp_path):
    """A Shift-JIS lead list (a Japanese Excel's CSV) was read as Mac-Roman, into nonsense."""
    path = tmp_path / "leads.csv"
    cities = ["東京都", "大阪府", "名古屋市", "福岡市"]
    rows = "".join(f"L{i},株式会社テスト{i},{city},SaaS\n" for i, city in enumerate(cities))
    path.write_bytes(("id,name,city,industry\n" + rows).encode("cp932"))
    assert read_leads(path)["city"].tolist() == cities
    out = tmp_path / "scored.csv"
    score_file(icp=icp_path, input=path, output=out)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 that Excel reads as such
    assert pd.read_csv(out, encoding="utf-8-sig")["city"].tolist() == cities


def _calibrated_document(icp_document, *, wins: int | None = None) -> dict:
    """The test ICP with a calibration fitted on fresh deals (``wins``: keep only that many)."""
    from icp_research.methods.calibration import fit_calibration

    rng = np.random.default_rng(21)
    deals = _deals(rng, 3000)
    scores = score_leads(icp_document, deals)["fit_score"].to_numpy(dtype=float)
    won = deals["won"].to_numpy(dtype=float)
    if wins is not None:
        won = np.where(np.cumsum(won) <= wins, won, 0.0)
    calibration = fit_calibration(
        scores, won, outcome_name="won", period=("2025-01-01", "2025-12-31")
    )
    return {**icp_document, "calibration": calibration.to_dict()}


def _score_cli(tmp_path, document, capsys, *extra):
    leads = tmp_path / "leads.csv"
    leads.write_text(MESSY, encoding="utf-8")
    path = write_json(document, tmp_path / "icp.json")
    out = tmp_path / "scored.csv"
    code = main(["score", "--icp", str(path), "--input", str(leads), "--output", str(out), *extra])
    captured = capsys.readouterr()
    return code, pd.read_csv(out) if out.exists() else None, captured.err.strip().splitlines()


def test_win_probability_beside_the_fit_score(tmp_path, icp_document, capsys):
    document = _calibrated_document(icp_document)
    code, scored, err = _score_cli(tmp_path, document, capsys)
    assert code == 0 and err == []
    columns = list(scored.columns)
    assert columns.index("win_probability") == columns.index("tier") + 1
    # A lead of tier Unknown (nothing the score reads is known) has none.
    unknown = (scored["tier"] == "Unknown").to_numpy()
    assert unknown.any() and np.isnan(scored["win_probability"].to_numpy()[unknown]).all()
    scored = scored[~unknown]
    probability = scored["win_probability"].to_numpy()
    assert np.all((probability > 0) & (probability < 1))
    parameters = document["calibration"]["parameters"]
    expected = 1 / (
        1 + np.exp(-(parameters["intercept"] + parameters["slope"] * scored["fit_score"]))
    )
    # Written to four decimals (a calibration is not known closer than that).
    np.testing.assert_allclose(probability, expected, atol=5e-5 + 1e-12)
    assert np.array_equal(probability, np.round(probability, 4))
    # Higher fit score, higher win probability.
    order = np.argsort(scored["fit_score"].to_numpy(), kind="stable")
    assert np.all(np.diff(probability[order]) >= 0)
    # The deals' won rate is about the mean probability over 500 fresh deals.
    fresh = _deals(np.random.default_rng(33), 500)
    fresh_scored = score_leads(document, fresh.drop(columns="won"))
    assert fresh_scored["win_probability"].sum() == pytest.approx(fresh["won"].sum(), rel=0.15)


def test_win_probability_is_empty_without_a_calibration_and_says_why(
    tmp_path, icp_document, capsys
):
    code, scored, err = _score_cli(tmp_path, icp_document, capsys)
    assert code == 0 and scored["win_probability"].isna().all()
    assert scored["fit_score"].notna().all()
    assert len(err) == 1 and err[0].startswith("note: win_probability is empty: ")
    assert "has no calibration" in err[0]


def test_win_probability_is_empty_when_the_calibration_had_too_few_outcomes(
    tmp_path, icp_document, capsys
):
    document = _calibrated_document(icp_document, wins=7)
    assert document["calibration"]["status"] == "too_few_outcomes"
    code, scored, err = _score_cli(tmp_path, document, capsys)
    assert code == 0 and scored["win_probability"].isna().all()
    assert len(err) == 1 and "too few outcomes to calibrate" in err[0]
    assert "7 with the outcome" in err[0]
    # --quiet prints nothing, the column stays empty; --rules-only has no note at all.
    code, scored, err = _score_cli(tmp_path, document, capsys, "--force", "--quiet")
    assert code == 0 and err == [] and scored["win_probability"].isna().all()
    code, scored, err = _score_cli(tmp_path, document, capsys, "--force", "--rules-only")
    assert code == 0 and err == [] and scored["win_probability"].isna().all()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"method": "platt"}, "calibration.method is 'platt'"),
        ({"status": "maybe"}, "calibration.status is 'maybe'"),
        ({"period": {"start": "2025-13-01", "end": "2025-12-31"}}, "calibration.period.start"),
        ({"period": {"start": "2025-06-01", "end": "2025-01-31"}}, "starts (2025-06-01) after"),
        ({"check": {"period": "last year"}}, "calibration.check.period must be an object"),
        ({"parameters": {"intercept": None, "slope": 0.05}}, "parameters.intercept"),
        (
            {
                "method": "isotonic",
                "parameters": {"breakpoints": [0, 50, 40], "probabilities": [0.1, 0.2, 0.3]},
            },
            "breakpoints must increase",
        ),
        (
            {
                "method": "isotonic",
                "parameters": {"breakpoints": [0, 50], "probabilities": [0.3, 0.2]},
            },
            "probabilities must not decrease",
        ),
    ],
)
def test_a_malformed_calibration_is_refused(tmp_path, icp_document, capsys, change, message):
    document = _calibrated_document(icp_document)
    document["calibration"] = {**document["calibration"], **change}
    code, scored, err = _score_cli(tmp_path, document, capsys)
    assert code == 2 and scored is None
    assert len(err) == 1 and message in err[0], err
    # An old icp.json (no calibration block at all) and a null block stay valid.
    assert icp_problem({**icp_document, "calibration": None}) is None
    assert icp_problem(icp_document) is None


def test_sheet_picks_the_leads_sheet_over_the_configs(tmp_path, icp_path, capsys):
    """The config's accounts sheet ("Active Accounts") was applied to a lead list saved from
    another CRM view ("My Active Accounts"), and score had no way to name the sheet."""
    import openpyxl  # noqa: F401  (the Excel writer)

    config = write_project(
        tmp_path / "project",
        {},
        '[tables.accounts]\npath = "accounts.xlsx"\nsheet = "Active Accounts"\n'
        '[tables.accounts.columns]\naccount_id = "Account"\nindustry = "Industry"\n',
    )
    leads = tmp_path / "leads.xlsx"
    with pd.ExcelWriter(leads) as writer:
        pd.DataFrame({"x": [1]}).to_excel(writer, sheet_name="Notes", index=False)
        pd.DataFrame({"Account": ["L1", "L2"], "Industry": ["SaaS", "Retail"]}).to_excel(
            writer, sheet_name="My Active Accounts", index=False
        )
    out = tmp_path / "scored.csv"
    args = ["score", "--icp", str(icp_path), "--input", str(leads), "--output", str(out)]
    code = main([*args, "--config", str(config)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert (
        "has no sheet 'Active Accounts' (it has Notes, My Active Accounts); pass --sheet"
        in (err[0])
    )
    assert main([*args, "--config", str(config), "--sheet", "My Active Accounts"]) == 0
    scored = pd.read_csv(out, keep_default_na=False)
    assert list(scored["Account"]) == ["L1", "L2"] and scored["fit_score"].between(0, 100).all()


def test_no_fit_score_with_suggestive_signals_does_not_say_more_data_cannot_help(
    tmp_path, icp_document, capsys
):
    # A planted 2x ICP of two traits together (Snowflake users of 200-2,000 employees) left
    # both traits suggestive, not confirmed; the error said "no measured attribute predicts
    # the win rate ... so more of the same data could find only smaller ones; next, add other
    # attributes", steering away from the signals more closed deals would confirm.
    outcome = {
        "name": "won",
        "label": "win rate",
        "detectable": ["industry (±11 points)"],
        "too_little_data": [],
        "signals": ["tech_stack_c: Snowflake = True", "500 <= employees < 1,500"],
    }
    leads = tmp_path / "leads.csv"
    leads.write_text(MESSY, encoding="utf-8")
    path = write_json(_no_score_document(icp_document, outcome=outcome), tmp_path / "icp.json")
    args = ["score", "--icp", str(path), "--input", str(leads), "--output", str(tmp_path / "o.csv")]
    assert main(args) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert "could find only smaller ones" not in err
    assert err.endswith(
        "no measured attribute's effect on the win rate held up, though tech_stack_c: Snowflake "
        "= True; 500 <= employees < 1,500 were suggestive (the uncertain rules); next, rerun the "
        "ICP blueprint (icp-research run) once the exports hold more closed deals (won and "
        "lost), which could confirm or rule them out, or add other attributes; to use the ICP's "
        "rules meanwhile, score with --rules-only (marks in_icp and rules_hit, no fit score)"
    )


def test_a_country_rule_and_score_level_match_any_spelling_of_the_country():
    """The loader merges "Deutschland", "DE" and "Federal Republic of Germany" into one
    country; scoring did not, so German leads written so passed the exclude rule "country =
    Germany" (in_icp True) and were scored as a country unseen in training."""
    rng = np.random.default_rng(3)
    n = 3000
    country = rng.choice(["Germany", "United States", "France"], n)
    deals = pd.DataFrame(
        {"country": country, "won": rng.random(n) < np.where(country == "Germany", 0.1, 0.4)}
    )
    scorecard = fit_scorecard(deals, "won", categorical=["country"], numeric=[])
    document = {
        "format": 1,
        **scorecard.to_dict(),
        "rules": {
            "include": [],
            "exclude": [
                {
                    "id": "exclude:country",
                    "kind": "exclude",
                    "text": "country = Germany",
                    "conditions": [
                        {"attribute": "country", "operator": "equals", "value": "Germany"}
                    ],
                }
            ],
            "uncertain": [],
        },
        "attributes": {"country": {"type": "categorical"}},
    }
    spellings = ["Germany", "Deutschland", "DE", "Federal Republic of Germany", " germany "]
    leads = pd.DataFrame({"country": [*spellings, "USA", "U.S.", "France", "Brazil"]})
    hits = rule_hits(leads, document)
    assert hits["exclude:country"].tolist() == [True] * 5 + [False] * 4
    scored = score_leads(document, leads)
    german = scored["fit_score"].iloc[0]
    assert (scored["fit_score"].iloc[:5] == german).all()
    assert scored["fit_score"].iloc[5] == scored["fit_score"].iloc[6] > german
    assert "unseen" not in " ".join(scored["flags"].iloc[:7].fillna(""))


def test_a_european_spreadsheet_gets_its_scores_back_in_its_own_shape(
    tmp_path, icp_document, capsys
):
    """Leads saved by a German Excel (';'-separated, a byte-order mark, decimal commas) came
    back ','-separated without the mark: Excel opened them as one column with broken umlauts,
    and 0.46 was not a number to it."""
    document = _calibrated_document(icp_document)
    leads = tmp_path / "leads.csv"
    leads.write_bytes(
        "\ufeffname;industry;employees;crm\nMüller AG;SaaS;250;HubSpot\nBäcker;FinTech;12;None\n".encode(
            "utf-8"
        )
    )
    path = write_json(document, tmp_path / "icp.json")
    out = tmp_path / "scored.csv"
    code = main(["score", "--icp", str(path), "--input", str(leads), "--output", str(out)])
    assert code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    scored = pd.read_csv(out, sep=";", decimal=",", encoding="utf-8-sig")
    assert list(scored["name"]) == ["Müller AG", "Bäcker"]
    probability = scored["win_probability"].to_numpy(dtype=float)
    assert np.all((probability > 0) & (probability < 1))
    expected = score_leads(document, read_leads(leads))["win_probability"].to_numpy(dtype=float)
    # Written to four decimals (a calibration is not known closer than that).
    np.testing.assert_allclose(probability, expected, atol=5e-5 + 1e-12)
    assert np.array_equal(probability, np.round(probability, 4))
    # A plain ','-separated file stays as it was: no mark, decimal points.
    (tmp_path / "plain").mkdir()
    code, plain, _ = _score_cli(tmp_path / "plain", document, capsys)
    assert code == 0 and not (tmp_path / "plain" / "scored.csv").read_bytes().startswith(b"\xef")
    assert plain["win_probability"].dtype == float


def test_a_lead_list_whose_values_the_score_does_not_know_says_so(icp_document, tmp_path):
    from icp_research.scoring.model import score_file

    icp = write_json(icp_document, tmp_path / "icp.json")
    # An Apollo-like list: industries in the provider's words, then a blank and a totals row.
    leads = tmp_path / "apollo.csv"
    rows = ["company,industry,employees"]
    rows += [f"L{i},financial technology,{200 + i}" for i in range(6)]
    rows += [f"M{i},software as a service,{300 + i}" for i in range(3)]
    rows += ["N1,FinTech,250", ",,", "Total,,9 leads"]
    leads.write_text("\n".join(rows) + "\n", encoding="utf-8")
    summary = score_file(icp=icp, input=leads, output=tmp_path / "scored.csv")
    assert (
        ' Warning: industry: 9 of 12 leads have a value the score does not know ("financial '
        'technology" 6, "software as a service" 3); it knows ' in summary
    )
    assert (
        "they score neutral, so their tier says little; recode them in a config for this lead "
        'file ([tables.accounts.values.industry] "financial technology" = "<the level it is>") '
        "and pass it with --config." in summary
    )
    scored = pd.read_csv(tmp_path / "scored.csv", keep_default_na=False)
    assert len(scored) == 12  # every row comes back
    assert scored["flags"].iloc[10].startswith("blank row: no lead")
    assert scored["flags"].iloc[11].startswith("a totals row, not a lead")
    assert "no lead" not in scored["flags"].iloc[9] and "totals" not in scored["flags"].iloc[9]
    # A file whose values the score knows has no such warning.
    known = tmp_path / "known.csv"
    known.write_text("company,industry,employees\nA,FinTech,250\nB,Retail,40\n", encoding="utf-8")
    assert "Warning" not in score_file(icp=icp, input=known, output=tmp_path / "known_out.csv")


def test_excel_out_keeps_every_row_and_writes_text_as_text(tmp_path, icp_path):
    """Sales ops hand an .xlsx back: every lead in order, the scores as numbers, and a cell that
    starts with "=" or "+" stays the text it was (never a formula), with no quote added."""
    from openpyxl import load_workbook

    leads = tmp_path / "leads.csv"
    leads.write_text(
        "Company,industry,employees,crm\n"
        '"=HYPERLINK(""http://x"")",SaaS,300,HubSpot\n'
        "Acme,Retail,20,None\n"
        "+44 20 7946 0000,,,Salesforce\n"
    )
    out = tmp_path / "leads.scored.xlsx"
    summary = score_file(icp=icp_path, input=leads, output=out)
    assert "Scored 3 rows" in summary
    csv = tmp_path / "leads.scored.parquet"
    score_file(icp=icp_path, input=leads, output=csv)
    expected = pd.read_parquet(csv)
    sheet = load_workbook(out, read_only=True)["Scored leads"]
    rows = list(sheet.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert list(header) == list(expected.columns)
    assert len(body) == 3
    column = {name: i for i, name in enumerate(header)}
    assert [r[column["Company"]] for r in body] == [
        '=HYPERLINK("http://x")',
        "Acme",
        "+44 20 7946 0000",
    ]
    scores = [r[column["fit_score"]] for r in body]
    assert all(isinstance(s, (int, float)) for s in scores)
    assert scores == list(expected["fit_score"])
    assert [r[column["tier"]] for r in body] == list(expected["tier"])
    assert body[2][column["industry"]] is None
    # No formula anywhere: openpyxl marks a formula cell with data type "f".
    cells = load_workbook(out)["Scored leads"]
    assert all(c.data_type != "f" for row in cells.iter_rows() for c in row)
    # The Excel file read back as leads scores the same.
    again = tmp_path / "again.parquet"
    score_file(icp=icp_path, input=out, output=again)
    assert list(pd.read_parquet(again)["fit_score"]) == scores


def test_too_many_leads_for_excel_is_refused_before_scoring(tmp_path, icp_path, monkeypatch):
    import icp_research.scoring.model as model

    monkeypatch.setattr(model, "EXCEL_MAX_ROWS", 3)

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored a lead file that cannot be written")

    monkeypatch.setattr(model, "score_leads", no_scoring)
    leads = tmp_path / "leads.csv"
    leads.write_text("industry,employees,crm\nSaaS,300,HubSpot\nRetail,20,None\nSaaS,5,None\n")
    with pytest.raises(DataError, match=r"3 leads do not fit in an Excel sheet.*write \.csv"):
        score_file(icp=icp_path, input=leads, output=tmp_path / "out.xlsx")
    assert not (tmp_path / "out.xlsx").exists()


def test_a_lead_in_a_high_tier_that_meets_an_exclude_rule_is_flagged():
    """A first user's scored file: a Manufacturing lead of 11-50 employees in "Tier 1" (fit
    score 100) beside "exclude: employees < 51": the score read only industry, the exclude
    rule size. The flag says the lead is no fit by the rules whatever its tier."""
    rng = np.random.default_rng(3)
    n = 3000
    industry = rng.choice(["Manufacturing", "Retail", "Media"], n)
    deals = pd.DataFrame(
        {
            "industry": industry,
            "won": rng.random(n) < np.where(industry == "Manufacturing", 0.4, 0.2),
        }
    )
    scorecard = fit_scorecard(deals, "won", categorical=["industry"], numeric=[])
    rule = {"attribute": "employees", "operator": "less_than", "value": 51}
    document = {
        "format": 1,
        **scorecard.to_dict(),
        "rules": {
            "include": [],
            "exclude": [
                {
                    "id": "exclude:employees",
                    "kind": "exclude",
                    "text": "employees < 51",
                    "conditions": [rule],
                }
            ],
            "uncertain": [],
        },
        "attributes": {"industry": {"type": "categorical"}, "employees": {"type": "numeric"}},
    }
    leads = pd.DataFrame(
        {
            "industry": ["Manufacturing", "Manufacturing", "Retail", "Media", "Retail"],
            "employees": [20, 800, 20, 20, 800],
        }
    )
    scored = score_leads(document, leads)
    assert scored["tier"].iloc[0] == scorecard.tiers[0][0]
    excluded = scored["rules_hit"].str.contains("exclude: employees < 51")
    assert excluded.tolist() == [True, False, True, True, False]
    note = "meets an exclude rule: not a fit by the ICP's rules, whatever its tier"
    flagged = scored["flags"].str.contains(note, regex=False)
    assert flagged.iloc[0]
    assert flagged.tolist() == (excluded & (scored["tier"] != scorecard.tiers[-1][0])).tolist()
