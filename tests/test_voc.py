"""Voice of the customer: the codebook, survey attributes, buying-committee signals, and the
analyses on a small project whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import voc
from icp_research.data.config import config_from_dict
from icp_research.data.facts import latest_survey_answers, survey_attributes, survey_columns
from icp_research.errors import ConfigError
from icp_research.methods.codebook import (
    DEFAULT_CODEBOOK,
    Codebook,
    codebook_problems,
    default_codebook,
    normalise_text,
    redact,
)
from icp_research.methods.stats import (
    clustered_rate_test,
    clustered_ratio_test,
    ratio_ci,
    two_proportion_pvalue,
)

from .conftest import write_project


def themes_of(codebook: Codebook, texts) -> list[set[str]]:
    coded = codebook.code(pd.Series(texts))
    return [set(coded.columns[row]) for row in coded.to_numpy()]


# ---------------------------------------------------------------------------------------------
# Codebook


@pytest.fixture(scope="module")
def codebook():
    return default_codebook()


def test_a_text_carries_every_theme_it_mentions(codebook):
    [found] = themes_of(codebook, ["Too expensive, and nobody owned it after the admin left"])
    assert found == {"pricing", "no_owner"}
    [found] = themes_of(codebook, ["Stuck in security review, no budget owner"])
    assert found == {"security_review", "no_decision"}


def test_case_and_punctuation_do_not_matter(codebook):
    texts = [
        "PRICE!!!",
        "price",
        "Price.",
        "p.r.i.c.e",
        "didn’t justify the cost",
        "DIDN'T JUSTIFY",
    ]
    assert [("pricing" in t) for t in themes_of(codebook, texts)] == [
        True,
        True,
        True,
        False,  # letters split by punctuation are no longer the word
        True,  # curly apostrophe
        True,
    ]
    rules = Codebook({"sign_off": ["sign-off"]})
    assert themes_of(rules, ["no sign off yet", "SIGN—OFF pending", "signoff"]) == [
        {"sign_off"},
        {"sign_off"},
        set(),
    ]


def test_whole_words_and_wildcards():
    rules = Codebook({"exact": ["price"], "prefix": ["pric*"], "phrase": ["no owner"]})
    found = themes_of(rules, ["priceless", "prices went up", "the price", "pricing", "no owners"])
    assert found == [{"prefix"}, {"prefix"}, {"exact", "prefix"}, {"prefix"}, set()]
    # A word inside another word is not the word.
    assert themes_of(Codebook({"it": ["it"]}), ["IT team", "with it", "edit", "item"]) == [
        {"it"},
        {"it"},
        set(),
        set(),
    ]


def test_non_english_text(codebook):
    texts = [
        "Zu teuer für unser kleines Team",
        "Se estancó en la revisión de seguridad",
        "se estanco en la revision de seguridad",  # typed without accents
        "価格が高すぎる",
        "専任のRevOps担当者がいる",
        "CRMとの連携ができなかった",
        "ＰＲＩＣＩＮＧ",  # full-width letters (NFKC)
        "Niemand bei uns war dafür verantwortlich",
        "Straße",
    ]
    found = themes_of(codebook, texts)
    assert "pricing" in found[0]
    assert found[1] == found[2] == {"no_decision", "security_review"}
    assert found[3] == {"pricing"}
    assert found[4] == {"dedicated_owner"}
    assert found[5] == {"missing_integration"}
    assert found[6] == {"pricing"}
    assert found[7] == {"no_owner"}
    assert found[8] == set()
    assert normalise_text(pd.Series(["Straße", "Revisión", "ＡＢＣ", "crmとの連携"])).tolist() == [
        "strasse",
        "revision",
        "abc",
        "crm との連携",
    ]
    # Keywords in unspaced scripts match anywhere, even inside a longer run.
    assert themes_of(Codebook({"cjk": ["連携"]}), ["とても連携が悪い"]) == [{"cjk"}]


def test_regex_rules_see_the_normalised_text():
    rules = Codebook({"budget": [r"regex:\bno budget\b(?! owner)"], "money": [r"regex:\d+ ?k\b"]})
    found = themes_of(rules, ["No budget!", "no budget-owner", "Asked for $20K", "20 k seats"])
    assert found == [{"budget"}, set(), {"money"}, {"money"}]
    assert rules.explain("NO BUDGET this year") == {"budget": [r"regex:\bno budget\b(?! owner)"]}


def test_empty_missing_and_blank_texts_mention_nothing(codebook):
    texts = pd.Series([None, np.nan, "", "   ", "!!!", "price"], index=[10, 11, 12, 13, 14, 15])
    coded = codebook.code(texts)
    assert list(coded.index) == [10, 11, 12, 13, 14, 15]
    assert list(coded.columns) == list(DEFAULT_CODEBOOK)
    assert coded.dtypes.eq(bool).all()
    assert coded.any(axis=1).tolist() == [False] * 5 + [True]
    empty = codebook.code(pd.Series([], dtype="string"))
    assert empty.shape == (0, len(DEFAULT_CODEBOOK))
    normalised = normalise_text(texts)
    assert normalised.isna().tolist() == [True, True, False, False, False, False]
    assert normalised.iloc[2:].tolist() == ["", "", "", "price"]


def test_fast_matching_agrees_with_the_rules_one_by_one(codebook):
    """code() uses word lookups; explain() the plain per-rule regular expressions."""
    rng = np.random.default_rng(17)
    rules = [r for theme in DEFAULT_CODEBOOK.values() for r in theme if "regex:" not in r]
    fillers = ["the", "team", "said", "Ok,", "!!", "re-", "no", "budget", "owner", "连携", "x"]
    texts = []
    for _ in range(400):
        words = [
            str(rng.choice(rules)).replace("*", str(rng.choice(["", "s", "ing"])))
            if rng.random() < 0.3
            else str(rng.choice(fillers))
            for _ in range(rng.integers(1, 9))
        ]
        joiner = str(rng.choice([" ", "-", ", ", "", "。"]))
        texts.append(joiner.join(words))
    coded = codebook.code(pd.Series(texts))
    for text, row in zip(texts, coded.to_numpy(), strict=True):
        assert set(coded.columns[row]) == set(codebook.explain(text)), text


def test_repeated_texts_are_coded_like_unique_ones(codebook):
    rng = np.random.default_rng(5)
    pool = ["too expensive", "QBR all good", "no integration with our CRM", None, "価格が高すぎる"]
    texts = pd.Series(rng.choice(np.array(pool, dtype=object), 500))
    coded = codebook.code(texts)
    one_by_one = pd.concat([codebook.code(pd.Series([t], index=[i])) for i, t in texts.items()])
    pd.testing.assert_frame_equal(coded, one_by_one)


def test_config_replaces_adds_and_removes_themes():
    section = {
        "pricing": ["tarif*"],
        "timing": [],
        "data residency": ["eu hosting", r"regex:\bhosted in (the )?eu\b"],
        "add": {"missing_integration": ["zapier"]},
    }
    cb = Codebook.from_config(section)
    assert cb.rules["pricing"] == ("tarif*",)
    assert "timing" not in cb.themes and "data residency" in cb.themes
    assert cb.rules["missing_integration"][-1] == "zapier"
    assert themes_of(
        cb, ["Too expensive", "Tarifs trop élevés", "needs Zapier", "Hosted in the EU"]
    ) == [
        set(),
        {"pricing"},
        {"missing_integration"},
        {"data residency"},
    ]
    only_mine = Codebook.from_config({"defaults": False, "churn risk": ["cancel*"]})
    assert only_mine.themes == ["churn risk"]
    assert Codebook.from_config(None).themes == list(DEFAULT_CODEBOOK)


def test_bad_codebooks_are_config_errors_with_the_fix():
    problems = codebook_problems(
        {
            "pricing": "price",  # a single string is accepted
            "broken": ["regex:(unclosed"],
            "everything": ["regex:.*"],
            "symbols": ["!!!"],
            "numbers": [42],
            "backspace": ["regex:\bprice"],  # a double-quoted TOML "\b"
            "defaults": "yes",
            "add": {"pricng": ["x"]},
        },
        "icp.toml",
    )
    text = "\n".join(problems)
    assert "'regex:(unclosed' is not a valid regular expression" in text
    assert "matches an empty text" in text
    assert "keyword '!!!' has no letters or digits" in text
    assert "rule 42 must be text in quotes" in text
    assert "control character" in text and "single quotes" in text
    assert "defaults = 'yes' must be true or false" in text
    assert "adds rules to 'pricng', which is not a theme; did you mean 'pricing'?" in text
    assert not any("pricing" in p and "must be a list" in p for p in problems)
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        config_from_dict(
            {"tables": {"accounts": {"path": "a.csv"}}, "codebook": {"x": ["regex:("]}}
        )


def test_quotes_are_masked_and_cut():
    texts = pd.Series(
        [
            "Call jane.doe@example.com or +49 30 1234 5678, see https://x.io/a?b=1",
            "ping @maria about it",
            "x" * 300,
            None,
        ]
    )
    quoted = redact(texts, max_chars=40)
    assert quoted[0] == "Call [e-mail] or [phone], see [link]"
    assert quoted[1] == "ping [name] about it"
    assert len(quoted[2]) == 40 and quoted[2].endswith("…")
    assert pd.isna(quoted[3])


def test_coding_a_million_notes_is_vectorised(codebook):
    """A large mostly-unique corpus is coded in one pass per theme (a smoke test of speed)."""
    import time

    rng = np.random.default_rng(11)
    stems = np.array(["too expensive", "QBR fine", "no CRM integration", "went dark"], object)
    texts = (
        pd.Series(stems[rng.integers(0, 4, 20_000)])
        + " #"
        + pd.Series(rng.integers(0, 10**9, 20_000)).astype(str)
    )
    start = time.perf_counter()
    coded = codebook.code(texts)
    seconds = time.perf_counter() - start
    assert coded["pricing"].sum() == (texts.str.startswith("too expensive")).sum()
    assert seconds < 10  # about 0.5 s here (1M notes: about 20-40 s)


# ---------------------------------------------------------------------------------------------
# Statistics helpers


def test_clustered_ratio_test_without_and_with_clusters():
    y = np.array([1] * 30 + [0] * 70 + [1] * 15 + [0] * 85, dtype=float)
    x = np.array([True] * 100 + [False] * 100)
    plain = clustered_ratio_test(y, x)
    ratio, low, high = ratio_ci(30, 100, 15, 100)
    assert plain["ratio"] == pytest.approx(2.0)
    assert (plain["ci_low"], plain["ci_high"]) == pytest.approx((float(low), float(high)))
    assert plain["p_value"] == pytest.approx(two_proportion_pvalue(30, 100, 15, 100)[0])
    assert plain["test"] == "chi2"
    # The same data as 20 accounts of 10 identical deals: far less evidence.
    clusters = np.repeat(np.arange(20), 10)
    clustered = clustered_ratio_test(y, x, clusters)
    assert clustered["test"] == "poisson_cluster_robust"
    assert clustered["ratio"] == pytest.approx(2.0)
    assert clustered["ci_high"] - clustered["ci_low"] > 2 * (plain["ci_high"] - plain["ci_low"])
    assert clustered["p_value"] > plain["p_value"]
    assert (clustered["clusters_exposed"], clustered["clusters_rest"]) == (10, 10)
    # An empty cell has no finite model estimate: the clustered score test around the pooled
    # rate, 5 pairs against 15 (the exact test over 40 independent units gave p < 1e-6).
    sparse = clustered_ratio_test(
        np.r_[np.ones(10), np.zeros(30)], np.r_[[True] * 10, [False] * 30], np.arange(40) // 2
    )
    assert sparse["test"] == "score_cluster_robust"
    assert sparse["p_value"] == pytest.approx(
        clustered_rate_test([2] * 5, [2] * 5, [0] * 15, [2] * 15)
    )
    assert sparse["rate_rest"] == 0 and 1e-6 < sparse["p_value"] < 0.05
    # Three clusters of 20 units that all had it, against 60 single units at 30%.
    y = np.r_[np.ones(60), (np.arange(60) % 10 < 3).astype(float)]
    x = np.r_[[True] * 60, [False] * 60]
    few = clustered_ratio_test(y, x, np.r_[np.repeat([0, 1, 2], 20), np.arange(3, 63)])
    exact = clustered_ratio_test(y, x)
    assert few["p_value"] > 100 * exact["p_value"]
    assert few["ci_low"] < exact["ci_low"] and few["ratio"] == pytest.approx(exact["ratio"])
    empty = clustered_ratio_test([1, 0], [False, False])
    assert np.isnan(empty["p_value"]) and empty["test"].startswith("not tested")


# ---------------------------------------------------------------------------------------------
# Survey answers as account attributes


def test_survey_pivot_single_multi_latest_and_free_text():
    T = pd.Timestamp
    rows = [
        ("A", "team_owner", "RevOps", T("2025-01-01")),
        ("B", "team_owner", "revops ", T("2025-01-01")),  # case variant of RevOps
        ("C", "team_owner", "Finance", T("2024-01-01")),  # re-surveyed later:
        ("C", "team_owner", "Sales leadership", T("2025-01-01")),  # the latest answer counts
        ("A", "Integrations used?", "HubSpot", T("2025-01-01")),
        ("A", "Integrations used?", "Slack", T("2025-01-01")),  # several answers: multi
        ("B", "Integrations used?", "HubSpot", T("2025-01-01")),
        ("B", "team_owner", "", T("2025-01-01")),  # blank answers are dropped
    ] + [(f"F{i}", "comments", f"free text number {i}", T("2025-01-01")) for i in range(30)]
    survey = pd.DataFrame(rows, columns=["account_id", "question", "answer", "date"])
    latest = latest_survey_answers(survey)
    assert set(latest.loc[latest["question"] == "team_owner", "answer"]) == {
        "RevOps",
        "Sales leadership",
    }
    columns = survey_columns(survey)
    assert columns == {
        "survey_integrations_used_hubspot": ("Integrations used?", "HubSpot"),
        "survey_integrations_used_slack": ("Integrations used?", "Slack"),
        "survey_team_owner": ("team_owner", None),
    }
    attributes = survey_attributes(survey, pd.Index(["A", "B", "C", "D"]))
    assert attributes["survey_team_owner"].tolist()[:3] == ["RevOps", "RevOps", "Sales leadership"]
    assert pd.isna(attributes.loc["D", "survey_team_owner"])
    assert attributes["survey_integrations_used_slack"].tolist()[:2] == ["yes", "no"]
    assert attributes["survey_integrations_used_hubspot"].isna().tolist() == [
        False,
        False,
        True,
        True,
    ]


# ---------------------------------------------------------------------------------------------
# Buying committee


def test_seniority_and_function_rules():
    titles = [
        "CEO", "Founder & CEO", "Chief Revenue Officer", "VP Sales", "Vice President, Finance",
        "Head of Revenue Operations", "Director, Revenue Operations", "RevOps Manager",
        "Sales Ops Analyst", "Account Executive", "Managing Director", "Geschäftsführer", None, "",
    ]  # fmt: skip
    assert voc.seniority(titles).tolist() == [
        "C-level", "C-level", "C-level", "VP", "VP", "Director", "Director", "Manager", "IC",
        "IC", "C-level", "C-level", "(unknown)", "(unknown)",
    ]  # fmt: skip
    departments = ["Revenue Operations", "Sales Operations", "FP&A", None, None, "Facilities"]
    titles = ["Head of RevOps", "Analyst", "Manager", "Sales Ops Analyst", None, "Manager"]
    assert voc.business_function(departments, titles).tolist() == [
        "RevOps / Sales Ops",
        "RevOps / Sales Ops",
        "Finance",
        "RevOps / Sales Ops",
        "(unknown)",
        "Other",
    ]


def test_committee_signals_per_deal():
    roles = pd.DataFrame(
        [
            ("o1", "Economic Buyer", "CFO", "Finance"),
            ("o1", "Champion", "RevOps Manager", "Revenue Operations"),
            ("o1", "Champion", "Director of Sales", "Sales"),  # the more senior champion
            ("o1", "End User", "Account Executive", "Sales"),
            ("o2", "champion", "Sales Ops Analyst", None),
            ("o3", "Technical approver", "IT Manager", "IT"),
        ]
        + [("o4", "End User", "Analyst", "Sales")] * 6,
        columns=["opportunity_id", "role", "title", "department"],
    )
    signals = voc.committee_signals(roles)
    assert signals.loc["o1", "stakeholders"] == 4 and signals.loc["o1", "people"] == "4-5"
    assert signals.loc["o4", "people"] == "6+"
    assert signals["has_economic_buyer"].tolist() == [True, False, False, False]
    assert signals["has_champion"].tolist() == [True, True, False, False]
    assert signals["has_technical_approver"].tolist() == [False, False, True, False]
    assert signals.loc["o1", "champion_function"] == "Sales"
    assert signals.loc["o1", "champion_seniority"] == "Director"
    assert signals.loc["o2", "champion_function"] == "RevOps / Sales Ops"
    assert signals.loc["o1", "economic_buyer_seniority"] == "C-level"
    assert pd.isna(signals.loc["o3", "champion_function"])
    assert "title" not in signals.columns and "department" not in signals.columns


# ---------------------------------------------------------------------------------------------
# The analyses on a small project with known answers


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """120 accounts: 1-80 customers (61-80 churned; 1-12 the best by ARR), 81-110 lost,
    111-120 open. Accounts 1-20 have RevOps call notes, 61-70 'nobody owns the tool'; churned
    71-80 have no CRM and cite integration; lost 81-95 are 'no decision' with budget-owner
    notes; deals 81-90 had call notes about a security review before they were lost, deals
    1-10 upbeat ones before they were won; survey answers tie RevOps to the best customers."""
    ids = [f"A{i:03d}" for i in range(1, 121)]
    number = dict(zip(ids, range(1, 121), strict=True))
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "industry": ["SaaS", "Retail", "Health"] * 40,
            "employees": [50 + 10 * (i % 30) for i in range(120)],
            "crm": ["None" if 71 <= number[a] <= 80 else "HubSpot" for a in ids],
        }
    )
    customers = ids[:80]
    subscriptions = pd.DataFrame(
        {
            "account_id": customers,
            "start_date": "2025-01-01",
            "end_date": ["2025-09-01" if number[a] > 60 else "" for a in customers],
            "arr": [100_000 if number[a] <= 12 else 10_000 for a in customers],
        }
    )
    churned = ids[60:80]
    churn_events = pd.DataFrame(
        {
            "account_id": churned,
            "churned_at": "2025-09-01",
            "reason": ["Price" if number[a] <= 70 else "Missing integration" for a in churned],
            "feedback": [
                "Too expensive" if number[a] <= 70 else "No integration with our CRM"
                for a in churned
            ],
        }
    )
    stage = ["won"] * 80 + ["lost"] * 30 + ["open"] * 10
    opportunities = pd.DataFrame(
        {
            "opportunity_id": [f"O{i:03d}" for i in range(1, 121)],
            "account_id": ids,
            "stage": stage,
            "created_at": "2024-10-01",
            "closed_at": ["2024-12-31" if s != "open" else "" for s in stage],
            "loss_reason": [
                "No decision" if 81 <= i <= 95 else "Price" if s == "lost" else ""
                for i, s in enumerate(stage, start=1)
            ],
        }
    )
    notes = []
    for a in customers:
        n = number[a]
        text = (
            "Dedicated RevOps owner runs the forecast"
            if n <= 20
            else "nobody really owns the tool"
            if 61 <= n <= 70
            else "QBR, all good"
        )
        notes.append((a, "2025-03-01", "Call note", text, ""))
    for a in churned[:5]:  # also in churn_events: counted once
        notes.append((a, "2025-09-01", "churn", "too expensive!", ""))
    for i in range(81, 111):
        text = "No budget owner, stalled" if i <= 95 else "lost on price"
        notes.append((ids[i - 1], "2024-12-31", "Loss", text, f"O{i:03d}"))
    for i in list(range(1, 11)) + list(range(81, 91)):  # notes on open deals, before the close
        text = "great demo, moving fast" if i <= 10 else "waiting on their security review"
        notes.append((ids[i - 1], "2024-11-15", "call", text, f"O{i:03d}"))
    feedback = pd.DataFrame(
        notes, columns=["account_id", "date", "source", "text", "opportunity_id"]
    )
    survey = pd.DataFrame(
        [(a, "team_owner", "RevOps" if number[a] <= 12 else "Sales leadership") for a in ids[:40]]
        + [(a, "integrations", "HubSpot") for a in ids[:40]]
        + [(a, "integrations", "Slack") for a in ids[:5]]  # a multi-answer question
        + [("ZZZ", "team_owner", "RevOps")],  # an account the accounts table does not know
        columns=["account_id", "question", "answer"],
    )
    roles = []
    for i in range(1, 121):
        deal = f"O{i:03d}"
        roles.append((deal, "Champion", "RevOps Manager" if i <= 40 else "Sales Manager"))
        if i <= 60 or 100 <= i <= 105:
            roles.append((deal, "Economic Buyer", "CFO"))
    roles.append(("O999", "Champion", "CEO"))  # a deal the opportunities table does not know
    deal_roles = pd.DataFrame(roles, columns=["opportunity_id", "role", "title"])
    config = """
[project]
name = "VoC test"
as_of = "2025-12-31"
[tables.accounts]
path = "accounts.csv"
[tables.subscriptions]
path = "subscriptions.csv"
[tables.churn_events]
path = "churn_events.csv"
[tables.opportunities]
path = "opportunities.csv"
[tables.feedback]
path = "feedback.csv"
[tables.survey]
path = "survey.csv"
[tables.deal_roles]
path = "deal_roles.csv"
[attributes]
categorical = ["industry", "crm"]
numeric = ["employees"]
"""
    directory = tmp_path_factory.mktemp("voc_project")
    files = {
        "accounts.csv": _csv(accounts),
        "subscriptions.csv": _csv(subscriptions),
        "churn_events.csv": _csv(churn_events),
        "opportunities.csv": _csv(opportunities),
        "feedback.csv": _csv(feedback),
        "survey.csv": _csv(survey),
        "deal_roles.csv": _csv(deal_roles),
    }
    return icp.open_study(write_project(directory, files, config))


def test_unknown_accounts_and_deals_are_warned_about(project):
    warnings = [p for p in project.report.warnings]
    survey = [p.line() for p in warnings if p.table == "survey"]
    roles = [p.line() for p in warnings if p.table == "deal_roles"]
    assert any(
        "1 rows (" in w and "refer to accounts that are not in the accounts table" in w
        for w in survey
    )
    assert any('"ZZZ"' in w for w in survey)
    assert any("1 roles refer to unknown deals" in w for w in roles)


def test_survey_answers_become_behavioural_attributes(project):
    facts = project.facts.set_index("account_id")
    assert facts.loc["A001", "survey_team_owner"] == "RevOps"
    assert facts.loc[["A001", "A006", "A050"], "survey_integrations_slack"].tolist()[:2] == [
        "yes",
        "no",
    ]
    assert pd.isna(facts.loc["A050", "survey_integrations_slack"])
    assert facts["survey_team_owner"].notna().sum() == 40
    assert "survey_team_owner" in project.attributes.behavioural
    assert "survey_team_owner" not in project.attributes.categorical


def test_collect_feedback_counts_churn_feedback_once(project):
    notes = voc.collect_feedback(project)
    assert notes.attrs["duplicates"] == 5
    assert notes["source"].value_counts().to_dict() == {"call note": 100, "loss": 30, "churn": 20}


def test_feedback_themes_recover_what_was_planted(project):
    result = voc.feedback_themes(project)
    tests = result.tables["tests"].set_index(["outcome", "theme"])
    owner = tests.loc[("churned", "no_owner")]
    assert (owner["n_with"], owner["rate_with"]) == (10, 1.0)
    assert owner["rate_without"] == pytest.approx(10 / 70)
    assert owner["significant"] and owner["test"] == "fisher"
    revops = tests.loc[("best_customer", "dedicated_owner")]
    assert revops["rate_with"] == pytest.approx(12 / 20) and revops["rate_without"] == 0
    assert revops["theme_share_outcome"] == 1.0 and revops["significant"]
    stalled = tests.loc[("no_decision", "no_decision")]
    assert (stalled["n"], stalled["n_with"], stalled["rate_with"]) == (30, 15, 1.0)
    security = tests.loc[("won", "security_review")]
    assert (security["n"], security["n_with"], security["rate_with"], security["rate_without"]) == (
        20,
        10,
        0.0,
        1.0,
    )
    assert security["significant"] and security["test"] == "chi2"  # one deal per account

    frequencies = result.tables["frequencies"]
    churn_crm = frequencies[
        (frequencies["source"] == "churn")
        & (frequencies["segment_by"] == "crm")
        & (frequencies["segment"] == "None")
        & (frequencies["theme"] == "missing_integration")
    ].iloc[0]
    assert (churn_crm["accounts"], churn_crm["accounts_mentioning"]) == (10, 10)
    assert churn_crm["account_share_rest"] == 0 and churn_crm["significant"]
    total = frequencies[
        (frequencies["source"] == "all")
        & (frequencies["segment_by"] == "all")
        & (frequencies["theme"] == "(uncoded)")
    ].iloc[0]
    assert (total["notes"], total["mentions"]) == (150, 60)  # "QBR, all good", "great demo"
    assert total["ci_low"] < 60 / 150 < total["ci_high"]
    assert result.tables["uncoded"].iloc[0]["notes"] == 50
    assert set(result.tables["quotes"]["theme"]) >= {"no internal owner", "missing integration"}


def test_survey_and_committee_on_the_small_project(project):
    survey = voc.survey_answers(project)
    revops = survey.summary.set_index(["outcome", "answer"]).loc[("best_customer", "RevOps")]
    assert (revops["respondents"], revops["n"], revops["rate_with"]) == (40, 12, 1.0)
    assert revops["rate_without"] == 0 and revops["significant"]
    summary = survey.summary
    [slack] = summary[
        (summary["outcome"] == "best_customer") & (summary["column"] == "survey_integrations_slack")
    ].to_dict("records")
    assert (slack["answer"], slack["respondents"], slack["n"], slack["rate_with"]) == (
        "Slack",
        40,
        5,
        1.0,
    )

    committee = voc.buying_committee(project)
    table = committee.summary.set_index(["signal", "level"])
    with_buyer = table.loc[("has_economic_buyer", "yes")]
    # Deals 1-60 (won) and 100-105 (lost) had an economic buyer; 81-120 otherwise are lost/open.
    assert (with_buyer["deals"], with_buyer["won"]) == (66, 60)
    assert with_buyer["win_rate_rest"] == pytest.approx(20 / 44)
    assert with_buyer["significant"]
    revops = table.loc[("champion_function", "RevOps / Sales Ops")]
    assert (revops["deals"], revops["win_rate"]) == (40, 1.0)
    assert table.loc[("has_economic_buyer", "yes"), "open_deals"] == 0
    assert table.loc[("has_economic_buyer", "no"), "open_deals"] == 10
    assert "title" not in committee.tables["deals"].columns


def test_voice_of_customer_summary_and_artifacts(project):
    result = voc.voice_of_customer(project)
    artifacts = result.artifacts()
    assert list(artifacts) == [
        "feedback_themes",
        "theme_tests",
        "survey_answers",
        "buying_committee",
    ]
    assert list(artifacts["theme_tests"].columns) == voc.THEME_TEST_COLUMNS
    assert all(len(frame) for frame in artifacts.values())
    assert any("nobody" not in t and "no internal owner" in t for t in result.takeaways)
    assert result.findings[0].startswith("150 feedback notes from 110 accounts")


def test_a_study_without_the_tables_says_so(tmp_path):
    config = write_project(
        tmp_path,
        {"accounts.csv": "account_id,industry\nA,SaaS\nB,Retail\n"},
        '[tables.accounts]\npath = "accounts.csv"\n',
    )
    study = icp.open_study(config)
    result = voc.voice_of_customer(study)
    assert result.themes is None and result.survey is None and result.committee is None
    assert result.caveats[0] == (
        "Skipped: feedback themes (there is no feedback table and no churn feedback text); "
        "survey answers (there is no survey table); buying committee (there is no deal_roles "
        "table)."
    )
    assert result.missing["survey"] == "there is no survey table"
    assert all(frame.empty for frame in result.artifacts().values())
    assert list(result.artifacts()["buying_committee"].columns) == voc.BUYING_COMMITTEE_COLUMNS
    assert result.takeaways[0].startswith("Nothing in the feedback, survey or buying committees")
    assert not [c for c in study.facts.columns if c.startswith("survey_")]


def test_segments_can_be_chosen_and_unknown_ones_are_named(project):
    result = voc.feedback_themes(project, segment_by=["crm", "no_such_column"])
    assert set(result.tables["frequencies"]["segment_by"]) == {"all", "crm"}
    assert any("no_such_column" in c for c in result.caveats)
