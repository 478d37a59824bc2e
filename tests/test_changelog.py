"""The ICP change log on hand-made icp.json pairs where every change is known."""

from __future__ import annotations

import copy

from icp_research.analyses.changelog import compare_icp

from .icp_documents import categorical, condition, icp_document, numeric, rule

EMPLOYEES_1000 = condition("employees", "between", [100, 1000])


def previous_icp() -> dict:
    return icp_document(
        as_of="2026-06-30",
        statement="Old statement.",
        characteristics=[
            {"attribute": "employees", "role": "filter", "favour": ["100 to < 1,000"]},
            {"attribute": "region", "role": "filter", "favour": ["EMEA"]},
        ],
        include=[
            rule("include", "100 <= employees < 1,000", EMPLOYEES_1000, evidence="was 1.7x"),
            rule(
                "include",
                "industry in {SaaS, FinTech}",  # the same rule, written in another order
                condition("industry", "in", ["SaaS", "FinTech"]),
                evidence="industry before",
            ),
            rule("include", "region = EMEA", condition("region", "equals", "EMEA"), evidence="r"),
        ],
        exclude=[rule("exclude", "crm = None", condition("crm", "equals", "None"), evidence="c")],
        uncertain=[
            rule(
                "uncertain",
                "crm in {HubSpot, Salesforce}",
                condition("crm", "in", ["HubSpot", "Salesforce"]),
                reason="did not hold up in the latest quarters",
            )
        ],
        scorecard=[
            categorical("industry", {"SaaS": 30, "FinTech": 30, "Retail": 10}, 20),
            numeric("employees", [100, 1000], [0, 30, 20], 15),
            categorical("region", {"EMEA": 12, "APAC": 0}, 6),
        ],
        tiers=(("Tier 1", 75), ("Tier 2", 40), ("Tier 3", 0)),
        auc=0.62,
        ratios=[{"comparison": "Tier 1 vs Tier 3", "ratio": 2.5, "ci_low": 2.0, "ci_high": 3.1}],
    )


def current_icp() -> dict:
    return icp_document(
        as_of="2026-09-30",
        statement="New statement.",
        characteristics=[
            {"attribute": "employees", "role": "filter", "favour": ["100 to < 2,000"]},
            {"attribute": "crm", "role": "filter", "favour": ["HubSpot", "Salesforce"]},
        ],
        include=[
            rule(
                "include",
                "100 <= employees < 2,000",
                condition("employees", "between", [100.0, 2000.0]),
                evidence="win rate: 31% vs 18%",
            ),
            rule(
                "include",
                "industry in {FinTech, SaaS}",
                condition("industry", "in", ["FinTech", "SaaS"]),
                evidence="industry now",
            ),
            rule(
                "include",
                "crm in {HubSpot, Salesforce}",
                condition("crm", "in", ["HubSpot", "Salesforce"]),
                evidence="crm held up",
            ),
        ],
        exclude=[
            rule("exclude", "employees < 50", condition("employees", "less_than", 50), evidence="e")
        ],
        uncertain=[
            rule(
                "uncertain",
                "region = EMEA",
                condition("region", "equals", "EMEA"),
                reason="significant earlier; did not hold up in the latest quarters",
            )
        ],
        notes=["crm = None: no worse than the accounts the include rules already leave out."],
        scorecard=[
            categorical("industry", {"SaaS": 28, "FinTech": 36, "Retail": 10}, 22),
            numeric("employees", [100, 2000], [0, 30, 20], 15),
            categorical("crm", {"HubSpot": 18, "None": 0}, 8),
        ],
        tiers=(("Tier 1", 70), ("Tier 2", 40), ("Tier 3", 0)),
        auc=0.67,
        ratios=[{"comparison": "Tier 1 vs Tier 3", "ratio": 3.3, "ci_low": 2.6, "ci_high": 4.2}],
    )


def test_every_change_between_two_known_documents():
    log = compare_icp(current_icp(), previous_icp(), run="2026Q3", previous_run="2026Q2")
    assert log.status == "compared"
    found = {(c["section"], c["change"], c["item"]) for c in log.changes}
    assert found == {
        ("statement", "changed", "statement"),
        ("characteristics", "added", "crm"),
        ("characteristics", "removed", "region"),
        ("characteristics", "changed", "employees"),
        ("rules", "changed", "100 <= employees < 2,000"),
        ("rules", "moved", "crm in {HubSpot, Salesforce}"),
        ("rules", "moved", "region = EMEA"),
        ("rules", "added", "employees < 50"),
        ("rules", "removed", "crm = None"),
        ("fit score", "added", "crm"),
        ("fit score", "removed", "region"),
        ("fit score", "changed", "employees bins"),
        ("fit score", "changed", "industry = FinTech"),
        ("tiers", "changed", "Tier 1"),
    }
    by_item = {c["item"]: c for c in log.changes}
    changed = by_item["100 <= employees < 2,000"]
    assert (changed["before"], changed["after"]) == (
        "100 <= employees < 1,000",
        "100 <= employees < 2,000",
    )
    assert changed["evidence"] == "win rate: 31% vs 18%"  # the evidence of the rule now
    promoted = by_item["crm in {HubSpot, Salesforce}"]
    # Sentences say the rule in words, its code form after it; "item" stays the code form.
    assert promoted["sentence"] == (
        "The rule on accounts with HubSpot or Salesforce as CRM (crm in {HubSpot, Salesforce}) "
        "was promoted from uncertain to include."
    )
    demoted = by_item["region = EMEA"]
    assert demoted["sentence"] == (
        "The rule on accounts in EMEA (region = EMEA) was demoted from include to uncertain."
    )
    assert demoted["evidence"].startswith("significant earlier; did not hold up")
    # A removed rule carries the blueprint's reason for setting it aside.
    assert by_item["crm = None"]["evidence"] == (
        "crm = None: no worse than the accounts the include rules already leave out."
    )
    assert by_item["Tier 1"]["sentence"] == "Tier 1 now starts at 70 points (was 75)."
    # Every level present in both runs, biggest moves first; only moves of 5+ are changes.
    assert [(p["attribute"], p["level"], p["moved"]) for p in log.points][:3] == [
        ("industry", "FinTech", 6),
        ("industry", "SaaS", -2),
        ("employees", "< 100", 0),
    ]
    fintech = by_item["industry = FinTech"]
    assert (fintech["before"], fintech["after"]) == ("30", "36")
    assert fintech["evidence"] == "win rate in training 25% of 100 → 25% of 100"
    validation = {v["measure"]: (v["before_text"], v["after_text"]) for v in log.validation}
    assert validation["Holdout AUC"] == ("0.62 (0.59–0.65)", "0.67 (0.64–0.70)")
    assert validation["Tier 1 vs Tier 3"] == ("2.50x (2.00–3.10)", "3.30x (2.60–4.20)")
    assert log.summary == (
        "Since 2026Q2 (as of 2026-06-30): statement changed; 1 characteristic added, "
        "1 characteristic removed, 1 characteristic changed; 1 rule added, 1 rule removed, "
        "1 rule changed, 2 rules moved; 1 fit-score level moved by 5 points or more (largest: "
        "industry FinTech, +6); tier cut-offs moved; holdout AUC 0.62 → 0.67."
    )


def test_the_same_document_is_unchanged_whatever_the_rule_ids_and_value_order():
    previous = previous_icp()
    current = copy.deepcopy(previous)
    current["as_of"] = "2026-09-30"
    for r in current["rules"]["include"]:
        r["id"] = "renamed"
    current["rules"]["include"][1]["conditions"][0]["value"] = ["FinTech", "SaaS"]
    current["rules"]["include"][0]["conditions"][0]["value"] = [100.0, 1000.0]
    log = compare_icp(current, previous, run="2026Q3", previous_run="2026Q2")
    assert log.changes == []
    assert log.summary == (
        "The ICP is unchanged since 2026Q2 (as of 2026-06-30): same statement, characteristics, "
        "rules, points and tier cut-offs."
    )


def test_first_run_and_missing_documents():
    first = compare_icp(current_icp(), None, run="2026Q3")
    assert first.status == "first_run" and first.changes == []
    assert first.summary.startswith("No run of an earlier quarter to compare with (a rerun")
    assert "Include rule: accounts with 100–1,999 employees (100 <= employees < 2,000)" in (
        first.baseline
    )
    markdown = first.to_markdown()
    assert "## 2026Q3 (as of 2026-09-30)" in markdown and "### The ICP at this run" in markdown
    # Plain text stays plain: no HTML entities in the Markdown file.
    assert "- Include rule: accounts with 100–1,999 employees (100 <= employees < 2,000)" in (
        markdown
    )
    assert "&lt;" not in markdown and "&amp;" not in markdown
    no_previous = compare_icp(current_icp(), None, run="2026Q3", previous_run="2026Q2")
    assert no_previous.status == "nothing_to_compare"
    assert no_previous.summary.startswith("The previous run, 2026Q2, has no ICP definition")
    assert compare_icp(None, previous_icp()).status == "no_icp"


def test_markdown_escapes_data_and_keeps_the_history():
    previous = previous_icp()
    current = current_icp()
    current["statement"] = "Fits <script>alert(1)</script> | *bold* [link](http://x) & `code`"
    current["rules"]["exclude"].append(
        rule("exclude", "industry = <b>_x_</b>", condition("industry", "equals", "<b>_x_</b>"))
    )
    history = "# ICP change log\n\n## 2026Q2 (as of 2026-06-30)\n\nFirst run: nothing to compare.\n"
    log = compare_icp(current, previous, run="2026Q3", previous_run="2026Q2", history=history)
    markdown = log.to_markdown()
    assert (
        "\\<script>alert(1)\\</script> \\| \\*bold\\* \\[link\\](http://x) & \\`code\\`" in markdown
    )
    assert "New exclude rule: accounts in \\<b>\\_x\\_\\</b> (industry = \\<b>\\_x\\_\\</b>)." in (
        markdown
    )
    # Rendered as Markdown, the data is text: no element, link or emphasis comes out of it.
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    rendered = markdown2html_mistune(markdown)
    assert "<script" not in rendered and "<b>" not in rendered and "<em>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "(industry = &lt;b&gt;_x_&lt;/b&gt;)." in rendered
    # One title; this run's entry first, the earlier one below it.
    assert markdown.count("# ICP change log") == 1
    assert markdown.index("## 2026Q3") < markdown.index("## 2026Q2 (as of 2026-06-30)")
    assert markdown.endswith("First run: nothing to compare.\n")
    assert "| industry | FinTech | 30 | 36 | +6 |" in markdown
    assert "| Holdout AUC | 0.62 (0.59–0.65) | 0.67 (0.64–0.70) |" in markdown
    # The JSON form holds the same changes.
    document = log.to_json()
    assert document["previous_run"] == "2026Q2" and len(document["changes"]) == len(log.changes)
    table = log.table()
    assert list(table.columns) == ["change", "item", "before", "after", "evidence"]
    assert "rule added" in set(table["change"])


def test_two_runs_without_an_icp_are_not_told_their_icp_changed():
    """Null data, two quarters: the change log read "ICP changed: statement", "1 rule removed:
    it no longer holds up" (an uncertain rule, which never held up) and "tier cut-offs
    unchanged" beside no fit score either time."""
    signal = rule("uncertain", "employees < 40", condition("employees", "less_than", 40))
    previous = icp_document(
        statement="No ICP can be drawn from this data yet: one reason.", uncertain=[signal]
    )
    current = icp_document(statement="No ICP can be drawn from this data yet: another reason.")
    assert not previous["drawn"] and not current["drawn"]
    log = compare_icp(current, previous, run="2025Q4", previous_run="2025Q3")
    (statement,) = [c for c in log.changes if c["item"] == "statement"]
    assert statement["sentence"].startswith("Still no ICP; the statement of why changed from")
    (removed,) = [c for c in log.changes if c["change"] == "removed"]
    assert removed["evidence"].startswith("it is no longer suggestive in this run's data")
    assert "tier cut-offs" not in log.summary
    assert log.summary.startswith("Since ") and "still no ICP, its statement of why changed" in (
        log.summary
    )


def test_a_changed_characteristic_says_what_moved():
    """'employees: filter → filter; avoid < 60' read as garbled: the change is a level now
    avoided."""
    from icp_research.analyses.changelog import _characteristic_moves

    before = {"role": "filter", "favour": ["FinTech"], "avoid": []}
    after = {"role": "filter", "favour": ["FinTech", "SaaS"], "avoid": ["< 60"]}
    assert _characteristic_moves(before, after) == "now favours SaaS; now avoids < 60"
    assert _characteristic_moves(after, {"role": "signal", "favour": ["SaaS"]}) == (
        "now a signal (was a filter); no longer favours FinTech; no longer avoids < 60"
    )
