"""Second round of hostile input: text that used to stall the run, flags of many spellings,
ids that lose their zeros, malformed ICP files, impossible quarters (each a test that failed
before its fix)."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from icp_research.methods.codebook import redact


@pytest.mark.parametrize(
    "text",
    ["a" * 1_000_000, "1" * 1_000_000 + "x", "a." * 500_000, "a@" * 500_000, "x@" + "b" * 10**6],
)
def test_redaction_is_linear_in_a_megabyte_token(text):
    started = time.perf_counter()
    out = redact(pd.Series([text]), max_chars=50)
    assert time.perf_counter() - started < 3  # was 18 s for 80 KB, minutes for 1 MB
    assert len(out.iloc[0]) <= 50


def test_redaction_still_masks_addresses_links_phones_and_handles():
    out = redact(
        pd.Series(["mail jane.doe+x@acme.co.uk, call +1 (555) 010-2030, see www.x.io @jdoe"]),
        max_chars=200,
    )
    assert out.iloc[0] == "mail [e-mail], call [phone], see [link] [name]"


def test_a_megabyte_cell_is_cut_at_load_with_a_warning(tmp_path):
    from icp_research.data.loading import MAX_CELL_CHARS, load_tables

    from .conftest import write_project

    note = "word " * 200_000
    config = write_project(
        tmp_path,
        {
            "accounts.csv": "account_id,industry\nA1,SaaS\nA2,Retail\n",
            "feedback.csv": f"account_id,text\nA1,{note}\nA2,short note\n",
        },
        '[tables.accounts]\npath = "accounts.csv"\n[tables.feedback]\npath = "feedback.csv"\n',
    )
    dataset = load_tables(config)
    text = dataset.tables["feedback"]["text"]
    assert text.str.len().tolist() == [MAX_CELL_CHARS, len("short note")]
    warnings = [p.line() for p in dataset.report.warnings]
    assert any(
        "1 cells are longer than 10,000 characters (the longest 999,999)" in w for w in warnings
    )


def test_an_as_of_before_all_the_data_is_refused_up_front(tmp_path, capsys):
    from icp_research.cli import main

    from .conftest import write_project

    config = write_project(
        tmp_path,
        {
            "accounts.csv": "account_id,created_at\nA1,2024-03-01\nA2,2024-05-01\n",
            "opportunities.csv": "opportunity_id,account_id,stage,created_at\n"
            "O1,A1,won,2024-04-01\n",
        },
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.opportunities]\npath = "opportunities.csv"\n',
    )
    out = tmp_path / "reports" / "2020Q1"
    assert main(["run", "--config", str(config), "--quarter", "2020Q1", "--out", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert err == [
        "error: as of 2020-03-31 there is nothing to analyse: the earliest record is 2024-03-01 "
        "(accounts.created_at); choose a later --quarter or [project] as_of"
    ]
    assert not out.exists() and not (tmp_path / "reports").exists()


@pytest.mark.parametrize("quarter", ["9999Q4", "2262Q2", "1677Q1"])
def test_quarters_outside_the_analysable_years_exit_2(tmp_path, quarter, capsys):
    from icp_research.cli import main

    from .conftest import write_project

    config = write_project(
        tmp_path, {"accounts.csv": "account_id\nA1\n"}, '[tables.accounts]\npath = "accounts.csv"\n'
    )
    assert main(["run", "--config", str(config), "--quarter", quarter]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: --quarter '{quarter}' is outside the years 1678-2261 that can be analysed; "
        "give a quarter in that range, e.g. 2026Q3"
    ]


@pytest.mark.parametrize("as_of", ['"9999-12-31"', "1600-01-01", "9999-12-31T10:00:00"])
def test_as_of_outside_the_analysable_years_is_a_config_error(tmp_path, as_of, capsys):
    from icp_research.cli import main

    from .conftest import write_project

    config = write_project(
        tmp_path,
        {"accounts.csv": "account_id\nA1\n"},
        f'[project]\nas_of = {as_of}\n[tables.accounts]\npath = "accounts.csv"\n',
    )
    assert main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{as_of.strip(chr(34))[:10]} is outside the years 1678-2261 that can be analysed" in err


def test_a_toml_nested_ten_thousand_levels_is_a_config_error(tmp_path, capsys):
    from icp_research.cli import main

    config = tmp_path / "icp.toml"
    config.write_text("x = " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nested too deeply to read" in err[0]


@pytest.mark.parametrize(
    "href",
    ["java\tscript:alert(1)", "java\nscript:alert(1)", "\x01javascript:alert(1)", "a\x00b.html"],
)
def test_links_with_control_characters_are_refused(href):
    from icp_research.reporting.render import sanitize_html

    cleaned = sanitize_html(f'<a href="{href}">x</a>')
    assert "href" not in cleaned and "script" not in cleaned.replace("<a>", "")


def test_bidi_overrides_in_data_are_isolated_by_the_report_styles():
    from icp_research.bundled import templates_dir

    for name in ("report.css", "onepager.css"):
        css = (templates_dir() / "report" / name).read_text(encoding="utf-8")
        assert (
            "td, th, li, dd, dt, p, h1, h2, h3, h4, figcaption, caption, span { unicode-bidi: isolate; }"
            in css
        )


def _validate_one_line(tmp_path, files, config, capsys):
    from icp_research.cli import main

    from .conftest import write_project

    path = write_project(tmp_path, files, config)
    code = main(["validate", "--config", str(path)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    return code, err


def test_a_nul_byte_past_the_first_8_kib_is_an_error_with_its_line(tmp_path, capsys):
    rows = "".join(f"A{i},Retail\n" for i in range(2_000))
    code, err = _validate_one_line(
        tmp_path,
        {"accounts.csv": "account_id,industry\n" + rows + "B1,Manu\x00facturing\n"},
        '[tables.accounts]\npath = "accounts.csv"\n',
        capsys,
    )
    assert code == 2
    assert err == [
        "error: accounts.csv: contains a zero (NUL) byte at line 2,002, as a corrupt or binary "
        "file does; fix: export the table again, or remove the zero bytes (e.g. tr -d '\\000')"
    ]


def test_a_link_loop_and_a_pipe_are_named_as_such(tmp_path, capsys):
    import os

    loop = tmp_path / "loop.csv"
    loop.symlink_to(tmp_path / "loop.csv")
    code, err = _validate_one_line(
        tmp_path / "a", {}, f'[tables.accounts]\npath = "{loop}"\n', capsys
    )
    assert code == 2 and "is a link that leads nowhere" in err[0]
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    code, err = _validate_one_line(
        tmp_path / "b", {}, f'[tables.accounts]\npath = "{fifo}"\n', capsys
    )
    assert code == 2 and "is not a regular file (a pipe, socket or device)" in err[0]


def test_a_flag_written_ten_ways_is_one_flag(tmp_path):
    from icp_research.data.loading import load_tables

    from .conftest import write_project

    spellings = ["Y", "N", "1", "0", "t", "Yes", "TRUE", "no", "f", "False"]
    rows = "".join(f"A{i},{s}\n" for i, s in enumerate(spellings))
    config = write_project(
        tmp_path,
        {"accounts.csv": "account_id,uses_sso\n" + rows},
        '[tables.accounts]\npath = "accounts.csv"\n',
    )
    sso = load_tables(config).tables["accounts"]["uses_sso"]
    assert sso.tolist() == [True, False, True, False, True, True, True, False, False, False]


def test_zero_padded_ids_are_detected_and_the_fix_named(tmp_path):
    from icp_research.data.validation import validate

    from .conftest import write_project

    accounts = "account_id\n" + "".join(f"{i}\n" for i in range(1, 11))
    deals = "opportunity_id,account_id,stage,created_at\n" + "".join(
        f"O{i},{(f'{i:03d}' if i <= 2 else str(i))},won,2024-01-0{1 + i % 9}\n"
        for i in range(1, 11)
    )
    config = write_project(
        tmp_path,
        {"accounts.csv": accounts, "opportunities.csv": deals},
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.opportunities]\npath = "opportunities.csv"\n',
    )
    lines = [p.line() for p in validate(config).warnings]
    hit = [line for line in lines if "leading zeros" in line]
    assert len(hit) == 1
    assert (
        '2 rows (20%) refer to accounts that are not in the accounts table (e.g. "001", "002")'
        in hit[0]
    )
    assert (
        '2 of them differ from an account id only by leading zeros ("001" here, "1" in accounts)'
        in hit[0]
    )
    assert "export both tables again with the ids kept as text" in hit[0]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "account_id,Industry,Industry ",
            'the header has "Industry" 2 times once spaces are trimmed',
        ),
        (
            "account_id,Industry,industry",
            'header names "Industry" and "industry" become the same column',
        ),
    ],
)
def test_headers_that_collide_once_trimmed_exit_2(tmp_path, capsys, header, message):
    code, err = _validate_one_line(
        tmp_path,
        {"accounts.csv": header + "\nA1,SaaS,Retail\n"},
        '[tables.accounts]\npath = "accounts.csv"\n',
        capsys,
    )
    assert code == 2 and len(err) == 1 and message in err[0]


def test_init_onto_a_file_and_demo_data_onto_exports_refuse_and_write_nothing(tmp_path, capsys):
    from icp_research.cli import main

    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    assert main(["init", str(existing)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert existing.read_text() == "mine"

    project = tmp_path / "project"
    project.mkdir()
    (project / "accounts.csv").write_text("my,own\n1,2\n")
    assert main(["init", str(project), "--with-demo-data"]) == 2
    err = capsys.readouterr().err
    assert "already holds accounts.csv; nothing was written" in err
    assert sorted(p.name for p in project.iterdir()) == ["accounts.csv"]
    assert (project / "accounts.csv").read_text() == "my,own\n1,2\n"
    # With --force the demo files replace them, and "wrote" lists exactly what was written.
    assert main(["init", str(project), "--with-demo-data", "--force"]) == 0
    wrote = [line for line in capsys.readouterr().out.splitlines() if line.startswith("wrote ")]
    assert len(wrote) == 10 and wrote[0].endswith("icp.toml")


def test_a_huge_number_in_an_excel_text_cell_is_not_written_out_in_300_digits():
    from icp_research.data.cleaning import as_text

    text = as_text(pd.Series([1e308, 12.0, "Retail"], dtype=object), set())
    assert text.tolist() == ["1e+308", "12", "Retail"]


def test_a_wide_export_loads_without_library_warnings(tmp_path):
    import warnings

    from icp_research.data.loading import load_tables

    from .conftest import write_project

    header = "account_id," + ",".join(f"c{i}" for i in range(400))
    rows = "".join(
        f"A{r}," + ",".join(str((r * i) % 5) for i in range(400)) + "\n" for r in range(20)
    )
    config = write_project(
        tmp_path,
        {"accounts.csv": header + "\n" + rows},
        '[tables.accounts]\npath = "accounts.csv"\n',
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a PerformanceWarning (fragmented frame) fails the test
        accounts = load_tables(config).tables["accounts"]
    assert accounts.shape == (20, 401)


def _scoring_icp() -> dict:
    from .icp_documents import categorical, condition, icp_document, numeric, rule

    return icp_document(
        include=[rule("include", "SaaS", condition("industry", "in", ["SaaS", "FinTech"]))],
        exclude=[rule("exclude", "tiny", condition("employees", "less_than", 60))],
        scorecard=[
            categorical("industry", {"SaaS": 30, "Retail": 0}, 10),
            numeric("employees", [50, 200], [0, 20, 40], 10),
        ],
    )


def _break(path: str, value):
    def apply(spec: dict) -> dict:
        target = spec
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        target[int(last) if last.isdigit() else last] = value
        return spec

    return apply


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_break("tiers.1.min_score", float("nan")), "tiers[1] (Tier 2) min_score must be a number"),
        (_break("tiers.0.min_score", "70"), "tiers[0] (Tier 1) min_score must be a number"),
        (_break("scorecard.attributes.1.edges", [200, 50]), "edges must increase: [200, 50]"),
        (
            _break("rules.include.0.conditions", None),
            "rules.include[0].conditions must be a non-empty list",
        ),
        (
            _break("rules.exclude.0.conditions.0.value", "sixty"),
            "needs a finite number, not 'sixty'",
        ),
        (_break("rules.include.0.conditions.0.operator", "like"), "has operator 'like'"),
        (_break("tiers", "Tier 1"), "'tiers' must be a non-empty list"),
        (_break("format", 99), "format 99 is not one this kit reads (format 1)"),
        (_break("scorecard.attributes.0.levels.0.points", None), "without finite points"),
    ],
)
def test_a_malformed_icp_json_is_refused_before_scoring(tmp_path, capsys, damage, message):
    import json

    from icp_research.cli import main

    icp = tmp_path / "icp.json"
    icp.write_text(json.dumps(damage(_scoring_icp())).replace("NaN", "NaN"))
    leads = tmp_path / "leads.csv"
    leads.write_text("account_id,industry,employees\nL1,SaaS,120\nL2,Retail,20\n")
    out = tmp_path / "scored.csv"
    code = main(["score", "--icp", str(icp), "--input", str(leads), "--output", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert "nothing was scored" in err[0] and not out.exists()


def test_the_intact_document_scores(tmp_path, capsys):
    import json

    from icp_research.cli import main

    icp = tmp_path / "icp.json"
    icp.write_text(json.dumps(_scoring_icp()))
    leads = tmp_path / "leads.csv"
    leads.write_text("account_id,industry,employees\nL1,SaaS,120\nL2,Retail,20\n")
    out = tmp_path / "scored.csv"
    assert main(["score", "--icp", str(icp), "--input", str(leads), "--output", str(out)]) == 0
    scored = pd.read_csv(out)
    assert scored["in_icp"].tolist() == [True, False]


def test_score_reads_the_configured_excel_sheet_and_names_an_empty_first_one(tmp_path, capsys):
    import json

    from icp_research.cli import main

    icp = tmp_path / "icp.json"
    icp.write_text(json.dumps(_scoring_icp()))
    workbook = tmp_path / "leads.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        pd.DataFrame({"Read me": []}).to_excel(writer, sheet_name="Notes", index=False)
        pd.DataFrame(
            {"account_id": ["L1", "L2"], "industry": ["SaaS", "Retail"], "employees": [120, 20]}
        ).to_excel(writer, sheet_name="Leads", index=False)
    out = tmp_path / "scored.csv"
    args = ["score", "--icp", str(icp), "--input", str(workbook), "--output", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "sheet 'Notes' has no rows; the leads may be on another sheet (Leads)" in err
    config = tmp_path / "icp.toml"
    config.write_text('[tables.accounts]\npath = "leads.xlsx"\nsheet = "Leads"\n')
    assert main([*args, "--config", str(config)]) == 0
    assert pd.read_csv(out)["in_icp"].tolist() == [True, False]


def test_a_title_row_above_an_excel_header_is_named_with_the_header_row_to_set(tmp_path, capsys):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Accounts export, Q3"])
    sheet.merge_cells("A1:C1")
    sheet.append(["account_id", "industry", "employees"])
    sheet.append(["A1", "SaaS", 120])
    sheet.append(["A2", "Retail", 20])
    book.save(tmp_path / "accounts.xlsx")
    code, err = _validate_one_line(
        tmp_path, {}, '[tables.accounts]\npath = "accounts.xlsx"\n', capsys
    )
    assert code == 2 and len(err) == 1
    assert "row 1 is not a header: 2 of 3 column names are blank" in err[0]
    assert "set header_row = 2 under [tables.accounts]" in err[0]

    from icp_research.data.loading import load_tables

    config = tmp_path / "icp.toml"
    config.write_text('[tables.accounts]\npath = "accounts.xlsx"\nheader_row = 2\n')
    accounts = load_tables(config).tables["accounts"]
    assert accounts["account_id"].tolist() == ["A1", "A2"]
    assert accounts["employees"].tolist() == [120, 20]


def test_header_row_skips_title_lines_of_a_csv(tmp_path):
    from icp_research.data.loading import load_tables

    from .conftest import write_project

    config = write_project(
        tmp_path,
        {"accounts.csv": "Export of 2026-09-30\n\naccount_id,industry\nA1,SaaS\nA2,Retail\n"},
        '[tables.accounts]\npath = "accounts.csv"\nheader_row = 3\n',
    )
    dataset = load_tables(config)
    assert dataset.tables["accounts"]["industry"].tolist() == ["SaaS", "Retail"]


def test_a_formula_like_level_travels_back_to_the_kit_without_its_spreadsheet_quote(tmp_path):
    """predictors.csv keeps the "'" that stops a spreadsheet evaluating "-" or "=1+2"; the copy
    the blueprint reads back has the level as it was (a rule on it matches its deals again)."""
    from icp_research.analyses import registry
    from icp_research.analyses.antipatterns import (
        ANTI_PATTERN_COLUMNS,
        Condition,
        read_anti_patterns,
        to_csv_frame,
    )
    from icp_research.artifacts import read_artifact, write_artifact

    predictors = pd.DataFrame(
        {"outcome": ["won", "won"], "predictor": ["website_platform"] * 2, "level": ["-", "=1+2"]}
    )
    predictors["n"] = [403, 12]
    write_artifact(registry.PREDICTORS, predictors, tmp_path)
    assert "'-" in (tmp_path / "predictors.csv").read_text()
    assert read_artifact(registry.PREDICTORS, tmp_path)["level"].tolist() == ["-", "=1+2"]

    rules = pd.DataFrame([dict.fromkeys(ANTI_PATTERN_COLUMNS)])
    rules.loc[0, ["rule_id", "attribute", "operator"]] = ["r1", "website_platform", "equals"]
    rules.at[0, "value"] = "-"
    write_artifact(registry.ANTI_PATTERNS_DEALS, to_csv_frame(rules), tmp_path)
    read_back = read_anti_patterns(tmp_path)
    assert read_back.loc[0, "value"] == "-"
    condition = Condition("website_platform", "equals", read_back.loc[0, "value"])
    deals = pd.DataFrame({"website_platform": ["-", "-", "Wix"]})
    assert condition.matches(deals).sum() == 2


def test_a_full_disk_during_a_run_is_one_line_exit_2_and_publishes_nothing(
    tmp_path, capsys, monkeypatch
):
    import errno

    from icp_research.cli import main
    from icp_research.pipeline import runner

    from .conftest import write_project

    config = write_project(
        tmp_path, {"accounts.csv": "account_id\nA1\n"}, '[tables.accounts]\npath = "accounts.csv"\n'
    )

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "manifest.json")

    monkeypatch.setattr(runner, "_manifest", disk_full)
    out = tmp_path / "reports" / "q3"
    assert main(["run", "--config", str(config), "--out", str(out), "--only", "00"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert err == [
        "error: the disk is full writing manifest.json; nothing was published (earlier runs are "
        "untouched): free some space or choose another --out / --output, then run again"
    ]
    assert not out.exists()
    reports = tmp_path / "reports"
    assert not reports.exists() or [p.name for p in reports.iterdir()] == [".icp-cache"]


def test_a_confirmation_too_small_to_tell_is_not_called_a_failure():
    """Issue 17.11: findings that point the same way in latest quarters too small to detect them
    are 'not enough data', not 'did not hold'."""
    from icp_research.analyses.significance import _why_none
    from icp_research.methods.predictors import TOO_SMALL_TO_TELL

    rows = pd.DataFrame(
        {
            "outcome": ["best_customer"] * 3,
            "predictor": ["employees", "industry", "region"],
            "level": [">= 4,000", "Retail", "EMEA"],
            "hypothesis_id": ["h1", "h2", "h3"],
            "significant": [True, True, True],
            "std_effect": [1.2, 0.8, 0.5],
            "replicated": [False, False, False],
            "replication": [
                f"same direction, not significant; {TOO_SMALL_TO_TELL}",
                f"same direction, not significant; {TOO_SMALL_TO_TELL}",
                "opposite direction in the confirmation period",
            ],
        }
    )
    text = _why_none(rows)
    assert "1 did not hold in the latest quarters" in text
    assert "2 could not be confirmed: the latest quarters hold too little data to tell" in text
