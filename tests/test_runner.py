"""The runner's promises: nothing half-written, nothing overwritten, failures isolated and named."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from icp_research.errors import InputError, RunExistsError
from icp_research.pipeline.runner import Progress, resolve_run, run_suite

from .conftest import run_cli, write_project

CONFIG = """
[project]
name = "Tiny <b>Co</b>"
as_of = "2024-12-31"
[tables.accounts]
path = "accounts.csv"
[tables.opportunities]
path = "opportunities.csv"
"""
ACCOUNTS = "account_id,industry\nA1,SaaS\nA2,Retail\n"
OPPORTUNITIES = "opportunity_id,account_id,stage,created_at,closed_at\nO1,A1,won,2024-01-01,2024-02-01\nO2,A2,lost,2024-01-05,2024-03-01\n"


def _notebook(path: Path, title: str, code: str, requires=("accounts",)) -> None:
    import nbformat

    params = new_code_cell('config: str = ""  # config\nartifacts_dir: str = ""  # artifacts')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[new_markdown_cell(f"# {title}\nA test report."), params, new_code_cell(code)]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["icp_research"] = {"title": title, "requires": list(requires)}
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path):
    config = write_project(
        tmp_path / "project", {"accounts.csv": ACCOUNTS, "opportunities.csv": OPPORTUNITIES}, CONFIG
    )
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(
        notebooks / "00_ok.ipynb",
        "Fine report",
        "from pathlib import Path\nPath(artifacts_dir, 'ok.txt').write_text('ok')\n1 + 1",
    )
    _notebook(
        notebooks / "01_fails.ipynb", "Broken report", "x = 1\nraise ValueError('planted failure')"
    )
    _notebook(notebooks / "02_needs_usage.ipynb", "Usage report", "1", requires=("usage",))
    return config, notebooks


def test_failed_and_skipped_notebooks_are_reported_and_the_rest_renders(project, tmp_path):
    config, notebooks = project
    before = {p.name: p.read_bytes() for p in config.parent.iterdir()}
    result = run_suite(
        config=config,
        out=tmp_path / "reports" / "r1",
        notebooks_dir=notebooks,
        progress=Progress(quiet=True),
    )
    assert result.exit_code == 1
    by_name = {o.name: o for o in result.outcomes}
    assert by_name["00_ok"].status == "ok"
    assert by_name["01_fails"].status == "failed"
    # "In [3]" of the executed notebook: parameters, injected parameters, then the failing cell.
    assert by_name["01_fails"].failed_cell == 3
    assert "ValueError: planted failure" in by_name["01_fails"].error
    assert (
        by_name["02_needs_usage"].status == "skipped"
        and by_name["02_needs_usage"].reason == "no usage table"
    )
    run = tmp_path / "reports" / "r1"
    assert (run / "01_fails.ipynb").exists()  # kept for debugging
    assert (run / "00_ok.html").exists() and (run / "artifacts" / "ok.txt").read_text() == "ok"
    index = (run / "index.html").read_text()
    assert "no usage table" in index and "planted failure" in index and "01_fails.ipynb" in index
    assert "Tiny &lt;b&gt;Co&lt;/b&gt;" in index and "<b>Co</b>" not in index
    manifest = json.loads((run / "artifacts" / "manifest.json").read_text())
    assert [n["status"] for n in manifest["notebooks"]] == ["ok", "failed", "skipped"]
    assert (tmp_path / "reports" / "index.html").exists()
    assert {p.name: p.read_bytes() for p in config.parent.iterdir()} == before  # inputs untouched
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_existing_run_needs_force_and_force_replaces_it(project, tmp_path):
    config, notebooks = project
    out = tmp_path / "reports" / "r2"
    keep = [notebooks / "00_ok.ipynb"]
    only = tmp_path / "only"
    only.mkdir()
    for path in keep:
        (only / path.name).write_bytes(path.read_bytes())
    run_suite(config=config, out=out, notebooks_dir=only, progress=Progress(quiet=True))
    marker = out / "artifacts" / "manifest.json"
    first = marker.read_text()
    with pytest.raises(RunExistsError, match="pass --force"):
        run_suite(config=config, out=out, notebooks_dir=only, progress=Progress(quiet=True))
    assert marker.read_text() == first
    run_suite(config=config, out=out, notebooks_dir=only, force=True, progress=Progress(quiet=True))
    assert json.loads(marker.read_text())["started_at"] >= json.loads(first)["started_at"]


def test_interrupted_run_leaves_the_previous_run_intact(project, tmp_path, monkeypatch):
    config, notebooks = project
    only = tmp_path / "only"
    only.mkdir()
    (only / "00_ok.ipynb").write_bytes((notebooks / "00_ok.ipynb").read_bytes())
    out = tmp_path / "reports" / "r3"
    run_suite(config=config, out=out, notebooks_dir=only, progress=Progress(quiet=True))
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    import icp_research.pipeline.runner as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_execute_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_suite(
            config=config, out=out, notebooks_dir=only, force=True, progress=Progress(quiet=True)
        )
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_a_killed_kernel_fails_its_notebook_only(project, tmp_path):
    config, notebooks = project
    only = tmp_path / "only"
    only.mkdir()
    _notebook(
        only / "00_dies.ipynb", "Dies", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    (only / "01_ok.ipynb").write_bytes((notebooks / "00_ok.ipynb").read_bytes())
    result = run_suite(
        config=config,
        out=tmp_path / "reports" / "r4",
        notebooks_dir=only,
        progress=Progress(quiet=True),
    )
    statuses = {o.name: o.status for o in result.outcomes}
    assert statuses == {"00_dies": "failed", "01_ok": "ok"}
    assert "Dead" in result.outcomes[0].error or "died" in result.outcomes[0].error.lower()
    # The executed notebook is kept and the run index names the cell that was running: the
    # one after the parameters and papermill's injected parameters (In [1], In [2]).
    died = result.outcomes[0]
    assert died.failed_cell == 3 and (result.out_dir / "00_dies.ipynb").exists()
    index = (result.out_dir / "index.html").read_text()
    assert "00_dies.ipynb" in index and re.search(r"cell\W+3\b", index)
    page = " ".join(re.sub(r"<[^>]+>", " ", (result.out_dir / "00_dies.html").read_text()).split())
    assert "This report failed at cell 3: DeadKernelError: Kernel died" in page


def test_each_page_is_rendered_as_soon_as_its_report_is_done(project, tmp_path):
    # The second report waits (up to 30 s) for the first one's page in the run folder (its
    # working directory): the pages are rendered while other reports still run, not after all.
    config, notebooks = project
    only = tmp_path / "only"
    only.mkdir()
    (only / "00_ok.ipynb").write_bytes((notebooks / "00_ok.ipynb").read_bytes())
    _notebook(
        only / "01_waits.ipynb",
        "Waits",
        "import time\nfrom pathlib import Path\nstart = time.time()\n"
        "while not Path('00_ok.html').exists() and time.time() - start < 30:\n"
        "    time.sleep(0.05)\n"
        "Path(artifacts_dir, 'seen.txt').write_text(str(Path('00_ok.html').exists()))",
    )
    result = run_suite(
        config=config,
        out=tmp_path / "reports" / "r5",
        notebooks_dir=only,
        jobs=2,
        progress=Progress(quiet=True),
    )
    assert [o.status for o in result.outcomes] == ["ok", "ok"]
    assert (result.out_dir / "artifacts" / "seen.txt").read_text() == "True"
    assert result.outcomes[1].seconds < 25
    assert all((result.out_dir / f"{n}.html").exists() for n in ("00_ok", "01_waits"))


def test_a_page_that_cannot_be_rendered_fails_its_report_only(project, tmp_path, monkeypatch):
    import icp_research.reporting.render as render

    config, notebooks = project
    only = tmp_path / "only"
    only.mkdir()
    (only / "00_ok.ipynb").write_bytes((notebooks / "00_ok.ipynb").read_bytes())
    _notebook(only / "01_unrenderable.ipynb", "Unrenderable", "2 + 2")
    real = render.render_notebook

    def render_notebook(path, *, meta):
        if "unrenderable" in str(path):
            raise ValueError("planted render failure")
        return real(path, meta=meta)

    monkeypatch.setattr(render, "render_notebook", render_notebook)
    result = run_suite(
        config=config,
        out=tmp_path / "reports" / "r6",
        notebooks_dir=only,
        progress=Progress(quiet=True),
    )
    assert result.exit_code == 1
    ok, broken = result.outcomes
    assert ok.status == "ok" and ok.html == "00_ok.html"
    assert broken.status == "failed" and broken.html is None
    assert broken.error == "rendering failed: ValueError: planted render failure"
    assert (result.out_dir / "01_unrenderable.ipynb").exists()  # the executed notebook is kept
    manifest = json.loads((result.out_dir / "artifacts" / "manifest.json").read_text())
    assert [n["status"] for n in manifest["notebooks"]] == ["ok", "failed"]
    assert "planted render failure" in (result.out_dir / "index.html").read_text()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"out": "reports/../../etc"}, "'..' is not allowed"),
        ({"out": "reports/bad name!"}, "is not allowed"),
        ({"quarter": "2026Q5"}, "is not a quarter"),
        ({"quarter": "../2026Q1"}, "is not a quarter"),
    ],
)
def test_run_names_are_validated(project, kwargs, message):
    config, _ = project
    with pytest.raises(InputError, match=message):
        resolve_run(config=config, demo=False, quarter=kwargs.get("quarter"), out=kwargs.get("out"))


def test_refuses_to_replace_a_folder_that_is_not_a_run(project, tmp_path):
    config, notebooks = project
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.docx").write_text("do not lose me")
    with pytest.raises(InputError, match="not an icp-research run"):
        run_suite(
            config=config,
            out=precious,
            notebooks_dir=notebooks,
            force=True,
            progress=Progress(quiet=True),
        )
    assert (precious / "thesis.docx").read_text() == "do not lose me"


def test_quarter_sets_as_of_and_names_the_run(project):
    config, _ = project
    _, as_of, out_dir, name = resolve_run(config=config, demo=False, quarter="2024Q2", out=None)
    assert as_of.isoformat() == "2024-06-30"
    assert name == "2024Q2" and out_dir.parent.name == "reports"


def test_cli_bad_input_exits_2_without_traceback(tmp_path):
    config = write_project(
        tmp_path,
        {"accounts.csv": "account_id\nA1\nA1\n"},
        '[tables.accounts]\npath = "accounts.csv"\n',
    )
    proc = run_cli("run", "--config", str(config), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.count("error: ") == 1 and "occur more than once" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_help_reads_well():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("run", "validate", "score", "init"):
        assert command in proc.stdout
    proc = run_cli("run", "--help")
    assert "--quarter" in proc.stdout and "--force" in proc.stdout and "--quiet" in proc.stdout


def test_init_writes_a_starter_and_refuses_to_overwrite(tmp_path):
    args = ("init", str(tmp_path / "p"), "--preset", "hubspot")
    assert run_cli(*args).returncode == 0
    text = (tmp_path / "p" / "icp.toml").read_text()
    assert '"Deal Stage"' in text and "Closed Won" in text
    proc = run_cli(*args)
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert os.path.getsize(tmp_path / "p" / "icp.toml") == len(text.encode())


def test_previous_run_is_the_latest_earlier_run_of_the_same_project(tmp_path):
    import datetime as dt

    from icp_research.pipeline.runner import find_previous_run

    def run(name, as_of, project="Acme", demo=False):
        folder = tmp_path / name / "artifacts"
        folder.mkdir(parents=True)
        manifest = {"run": name, "as_of": as_of, "project": project, "demo": demo}
        (folder / "manifest.json").write_text(json.dumps(manifest))

    run("2026Q1", "2026-03-31")
    run("2026Q2", "2026-06-30")
    run("2026Q3", "2026-09-30")
    run("demo-2026Q2", "2026-08-15", project="Lumen Metrics (demo)", demo=True)
    as_of = dt.date(2026, 9, 30)
    this_run = tmp_path / "2026Q3"
    assert find_previous_run(tmp_path, as_of, this_run).name == "demo-2026Q2"
    found = find_previous_run(tmp_path, as_of, this_run, project="Acme", demo=False)
    assert found.name == "2026Q2"
    demo = find_previous_run(tmp_path, as_of, this_run, project="Lumen Metrics (demo)", demo=True)
    assert demo.name == "demo-2026Q2"
    assert find_previous_run(tmp_path, dt.date(2026, 3, 31), this_run, project="Acme") is None


def test_run_headline_joins_overview_blueprint_and_health(tmp_path):
    from icp_research.pipeline.runner import _headline

    (tmp_path / "overview.json").write_text(json.dumps({"headline": {"Customers": "1,204"}}))
    (tmp_path / "icp.json").write_text(
        json.dumps({"statement": "Fits SaaS.", "headline": {"Holdout AUC": "0.67"}})
    )
    (tmp_path / "health.json").write_text(
        json.dumps({"headline": {"Drift of new customers": "stable"}})
    )
    headline, statement = _headline(tmp_path)
    assert headline == {
        "Customers": "1,204",
        "Holdout AUC": "0.67",
        "Drift of new customers": "stable",
    }
    assert statement == "Fits SaaS."


def test_a_report_without_findings_shows_its_own_summary_line_on_the_dashboard(tmp_path):
    from icp_research.pipeline.runner import key_finding

    results = tmp_path / "results"
    results.mkdir()
    skipped = "Skipped: survey answers (there is no survey table)."
    (results / "voc.json").write_text(json.dumps({"findings": [], "caveats": [skipped]}))
    (results / "churn.json").write_text(json.dumps({"findings": ["", "Churn is 9%."]}))
    (results / "deals.json").write_text(json.dumps({"findings": [], "caveats": []}))
    assert key_finding(tmp_path, "07_voice_of_customer") == f"No findings. {skipped}"
    assert key_finding(tmp_path, "02_churn_analysis") == "Churn is 9%."
    assert key_finding(tmp_path, "03_lost_deal_analysis") == "No findings."
    assert key_finding(tmp_path, "04_predictor_significance") is None


def test_demo_quarters_live_side_by_side_with_the_plain_demo_run():
    _, as_of, out_dir, name = resolve_run(config=None, demo=True, quarter="2026q2", out=None)
    assert (as_of.isoformat(), out_dir, name) == (
        "2026-06-30",
        Path("reports/demo-2026Q2"),
        "demo-2026Q2",
    )
    _, _, plain, _ = resolve_run(config=None, demo=True, quarter=None, out=None)
    assert plain == Path("reports/demo") and plain.parent == out_dir.parent


def test_kernel_pool_warms_only_as_many_kernels_as_run_at_once(tmp_path):
    """A warm kernel waits for each parallel slot, not for every notebook: a large run must
    not hold a warmed kernel per report in memory. Taking one starts warming the next."""
    import time

    from icp_research.pipeline.runner import KernelPool, _shutdown

    def settle(pool, expected):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with pool._lock:
                if pool._warming == 0:
                    break
            time.sleep(0.1)
        assert len(pool._started()) == expected

    pool = KernelPool(["a", "b", "c"], tmp_path, size=1)
    pool.share_data(None)  # the run's data is ready (forked kernels wait for it)
    taken = []
    try:
        settle(pool, 1)  # one warm kernel, not three
        taken.append(pool.take("a"))
        settle(pool, 1)  # taking it started the next one
        taken.append(pool.take("b"))
        settle(pool, 1)
        taken.append(pool.take("c"))
        settle(pool, 0)  # three notebooks, three kernels: nothing more is started
        assert len({id(km) for km in taken}) == 3
    finally:
        pool.shutdown()
        for km in taken:
            _shutdown(km)


def test_released_dataset_keeps_counts_and_what_it_has():
    from icp_research import load_demo

    dataset = load_demo().dataset
    rows = {name: len(frame) for name, frame in dataset.tables.items()}
    dataset.release()
    assert dataset.released_rows == rows
    assert all(len(frame) == 0 for frame in dataset.tables.values())
    assert dataset.has("opportunities") and not dataset.has("no_such_table")
    assert f"accounts={rows['accounts']:,}" in repr(dataset)


def test_the_command_leaves_out_the_slow_optional_iri_checker():
    # jsonschema (through nbformat) would import rfc3987_syntax, ~1 s of grammar building for a
    # string format no notebook schema uses; the command's own process marks it absent.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from icp_research.cli import _skip_slow_optional_imports\n"
        "_skip_slow_optional_imports()\n"
        "import nbformat, papermill\n"
        "from jsonschema import FormatChecker\n"
        "print(sys.modules.get('rfc3987_syntax', 'absent') is None, 'iri' in FormatChecker.checkers,"
        " 'date-time' in FormatChecker.checkers or 'date' in FormatChecker.checkers)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "True"]


def test_a_running_report_is_saved_when_it_ends_not_at_every_cell(project, tmp_path, monkeypatch):
    # papermill saves the notebook as each cell starts and ends (markdown included): 40 saves
    # of a growing notebook for these 20 cells, on the runner's core beside the kernels.
    import papermill.engines

    config, _ = project
    only = tmp_path / "only"
    only.mkdir()
    _notebook(only / "00_many_cells.ipynb", "Many cells", "1")
    import nbformat

    nb = nbformat.read(only / "00_many_cells.ipynb", as_version=4)
    nb.cells += [new_code_cell(f"x{i} = {i}") for i in range(17)]
    nbformat.write(nb, only / "00_many_cells.ipynb")
    saves = []
    real = papermill.engines.write_ipynb
    monkeypatch.setattr(
        papermill.engines, "write_ipynb", lambda nb, path: (saves.append(path), real(nb, path))
    )
    result = run_suite(
        config=config,
        out=tmp_path / "reports" / "r7",
        notebooks_dir=only,
        progress=Progress(quiet=True),
    )
    assert result.outcomes[0].status == "ok"
    assert 1 <= len(saves) <= 3  # the end (and one per 5 s of running)
    executed = nbformat.read(result.out_dir / "00_many_cells.ipynb", as_version=4)
    assert executed.cells[-1].outputs == [] and executed.cells[-1].execution_count is not None
    assert all(c.metadata.papermill.status == "completed" for c in executed.cells)


# The run loads its data in a child process, so that what loading leaves behind goes.


def _progress_to_file(tmp_path):
    return Progress(quiet=True, stream=(tmp_path / "progress.txt").open("w"))


def test_loading_runs_in_a_child_and_hands_back_its_result(tmp_path):
    from icp_research.pipeline.runner import _in_child

    pid, frame = _in_child(lambda: (os.getpid(), {"rows": [1, 2, 3]}), _progress_to_file(tmp_path))
    assert pid != os.getpid()
    assert frame == {"rows": [1, 2, 3]}


def test_an_error_in_the_child_is_raised_in_the_run_as_it_was(tmp_path):
    from icp_research.pipeline.runner import _in_child

    def bad_export():
        raise InputError("accounts.csv, column 'Employees', row 7: not a number", ["a", "b"])

    with pytest.raises(InputError) as caught:
        _in_child(bad_export, _progress_to_file(tmp_path))
    assert str(caught.value) == "accounts.csv, column 'Employees', row 7: not a number"
    assert caught.value.problems == ["a", "b"]

    def bug():
        return {}["missing"]

    with pytest.raises(KeyError) as caught:
        _in_child(bug, _progress_to_file(tmp_path))
    # The child's traceback comes along, for a bug report.
    assert any("in bug" in note for note in caught.value.__notes__)


def test_a_killed_child_is_an_error_not_a_silent_empty_run(tmp_path):
    import signal

    from icp_research.pipeline.runner import _in_child

    with pytest.raises(RuntimeError, match="killed by signal 9; out of memory"):
        _in_child(lambda: os.kill(os.getpid(), signal.SIGKILL), _progress_to_file(tmp_path))


def test_loading_stays_in_process_when_progress_is_not_a_file(tmp_path, monkeypatch):
    import io

    from icp_research.pipeline.runner import _in_child

    assert _in_child(os.getpid, Progress(quiet=True, stream=io.StringIO())) == os.getpid()
    monkeypatch.setenv("ICP_RESEARCH_NO_FORK", "1")
    assert _in_child(os.getpid, _progress_to_file(tmp_path)) == os.getpid()


def test_reports_start_by_chain_then_by_the_last_runs_times_else_their_typical_cost():
    """The blueprint -> health chain starts first; then, with no earlier run to time them by,
    the longer reports by their typical cost (the predictor significance first, beside the
    blueprint's first steps); an earlier run's times win over the costs."""
    from icp_research.pipeline.runner import _start_order, discover_notebooks

    specs = discover_notebooks()
    costs = {s.name: s.cost for s in specs}
    assert costs["05_icp_blueprint"] > costs["02_churn_analysis"] > costs["00_data_overview"]
    order = [s.name for s in _start_order(specs)]
    rest = sorted(set(costs) - {"05_icp_blueprint"}, key=lambda n: -costs[n])
    assert order == ["05_icp_blueprint", *rest]  # health waits for the blueprint anyway
    assert order[1:3] == ["04_predictor_significance", "02_churn_analysis"]
    assert order[-1] == "07_voice_of_customer"
    timed = {s.name: 1.0 for s in specs} | {"00_data_overview": 500.0}
    order = [s.name for s in _start_order(specs, timed)]
    assert order[:3] == ["05_icp_blueprint", "00_data_overview", "01_pattern_discovery"]


def test_the_default_as_of_date_is_the_last_thing_that_happened_and_the_run_says_so(tmp_path):
    """An open deal expected to close after the data ends (but before today) sets nothing: the
    run is as of the latest closed deal, says so, and the churn line of data_problems.csv is
    stated for the run's own date (a --quarter run's too), with that date's counts."""
    import io

    config = write_project(
        tmp_path / "project",
        {
            "accounts.csv": "account_id\nA1\nA2\nA3\nA4\n",
            "opportunities.csv": (
                "opportunity_id,account_id,stage,created_at,closed_at\n"
                "O1,A1,won,2024-01-01,2024-02-01\n"
                "O2,A2,lost,2024-01-05,2024-03-01\n"
                "O3,A3,won,2024-01-10,2024-05-20\n"
                "O4,A4,open,2024-02-01,2025-06-30\n"
            ),
            "churn.csv": "account_id,churned_at\nA1,2024-05-10\n",
        },
        '[project]\nname = "Tiny"\n[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.opportunities]\npath = "opportunities.csv"\n'
        '[tables.churn_events]\npath = "churn.csv"\n[analysis]\nchurn_source = "churn_events"\n',
    )
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "00_ok.ipynb", "Fine report", "1 + 1")

    def run(quarter, name):
        stream = io.StringIO()
        run_suite(
            config=config,
            quarter=quarter,
            out=tmp_path / "reports" / name,
            notebooks_dir=notebooks,
            progress=Progress(stream=stream),
        )
        folder = tmp_path / "reports" / name / "artifacts"
        manifest = json.loads((folder / "manifest.json").read_text())
        # The run's data snapshot: what data_problems.csv and the reports read.
        problems = json.loads((folder / "data" / "dataset.json").read_text())["problems"]
        (churn_line,) = [p["message"] for p in problems if "churned as of" in p["message"]]
        return stream.getvalue(), manifest["as_of"], churn_line

    text, as_of, churn_line = run(None, "latest")
    assert as_of == "2024-05-20"
    assert "] as of 2024-05-20, the latest closed deal (opportunities.closed_at)\n" in text
    assert churn_line.endswith("): 1 of 2 customers churned as of 2024-05-20")

    text, as_of, churn_line = run("2024Q1", "2024Q1")
    assert as_of == "2024-03-31"
    assert "] as of 2024-03-31, the end of quarter 2024Q1 (--quarter)\n" in text
    assert churn_line.endswith("): 0 of 1 customers churned as of 2024-03-31")

    # A quarter the data does not reach (an export not refreshed): its time would count as
    # time without churn. The quarter the data ends in is fine.
    text, as_of, _ = run("2024Q3", "2024Q3")
    assert (
        "] as of 2024-09-30, the end of quarter 2024Q3 (--quarter); warning: the data ends 133 "
        "days before the as-of date 2024-09-30 (the last thing in it is latest closed deal "
        "(opportunities.closed_at), 2024-05-20), so that time counts as time in which nothing "
        "happened (no churn, no deals): refresh the exports, or choose --quarter 2024Q2\n"
    ) in text
    # Loading's warnings are listed with -v only; the run says that they are there.
    assert re.search(
        r"\] \d+ warnings? from reading the data: in the data overview report and "
        r"artifacts/data_problems.csv \(-v or `icp-research validate` prints them\)\n",
        text,
    )
    dataset = tmp_path / "reports" / "2024Q3" / "artifacts" / "data" / "dataset.json"
    problems = json.loads(dataset.read_text())["problems"]
    (stale,) = [p for p in problems if p["message"].startswith("the data ends 133 days")]
    assert stale["table"] == "opportunities" and stale["level"] == "warning"
    # The dashboard says it first, above the headline numbers that time dilutes.
    manifest = json.loads(dataset.parent.parent.joinpath("manifest.json").read_text())
    assert manifest["as_of_warning"].startswith("The data ends 133 days before the as-of date")
    assert manifest["as_of_warning"].endswith(": refresh the exports, or choose --quarter 2024Q2.")
    dashboard = (tmp_path / "reports" / "2024Q3" / "index.html").read_text()
    assert dashboard.index("The data ends before the as-of date") < dashboard.index('id="reports"')
    text, _, _ = run("2024Q2", "2024Q2")
    manifest = json.loads(
        (tmp_path / "reports" / "2024Q2" / "artifacts" / "manifest.json").read_text()
    )
    assert manifest["as_of_warning"] is None
    assert (
        "The data ends before" not in (tmp_path / "reports" / "2024Q2" / "index.html").read_text()
    )
    assert "warning" not in text.split("] as of 2024-06-30")[1].splitlines()[0]

    # A quarter that has not ended yet says so.
    text, as_of, _ = run("2099Q1", "2099Q1")
    assert as_of == "2099-03-31"
    assert (
        "] as of 2099-03-31, the end of quarter 2099Q1 (--quarter); warning: that date is in "
        "the future (the last thing in the data is latest closed deal "
        "(opportunities.closed_at), 2024-05-20), so time up to it counts as time in which "
        "nothing happened; choose a quarter that has ended\n"
    ) in text


def test_the_dashboard_says_what_the_predictor_report_recommends_that_the_icp_lacks(tmp_path):
    from icp_research.pipeline.runner import icp_note

    icp = {
        "drawn": True,
        "outcome": {"selected_on": {"start": "2024-01-01", "end": "2026-03-31"}},
        "rules": {
            "include": [{"conditions": [{"attribute": "employees", "operator": "at_least"}]}],
            "exclude": [],
            "uncertain": [],
        },
    }
    predictors = {
        "as_of": "2026-09-30",
        "recommended": [
            {"predictor": "employees", "favour": []},
            {"predictor": "referral_source", "favour": ["Partner"]},
        ],
    }
    (tmp_path / "icp.json").write_text(json.dumps(icp), encoding="utf-8")
    (tmp_path / "icp_predictors.json").write_text(json.dumps(predictors), encoding="utf-8")
    assert icp_note(tmp_path) == (
        "The predictor report, on every quarter up to 2026-09-30, recommends referral source "
        "(Partner), which the ICP does not use: on the data the ICP is chosen on (up to "
        "2026-03-31) it was not confirmed (not significant on those fewer quarters, or not "
        "again in its confirmation quarters: too little evidence, not evidence against), so the "
        "ICP leaves it out. The next quarterly run tests it again."
    )
    # An uncertain rule is no use of it: the note stays.
    icp["rules"]["uncertain"] = [{"conditions": [{"attribute": "referral_source"}]}]
    (tmp_path / "icp.json").write_text(json.dumps(icp), encoding="utf-8")
    assert "recommends referral source (Partner)" in icp_note(tmp_path)
    import pandas as pd

    # The churn report's candidate exclude rules the ICP has no rule on are named too; a
    # contract term (how customers pay) is no ICP rule and is not.
    pd.DataFrame(
        {
            "rule_id": ["churn:signup:product_hunt", "churn:billing_period:monthly"],
            "source": ["churn", "churn"],
            "status": ["candidate", "contract term"],
            "attribute": ["signup", "billing_period"],
            "rule": ["signup = product_hunt", "billing_period = monthly"],
            "words": ["with product_hunt as signup", "with monthly as billing period"],
            "value": ['"product_hunt"', '"monthly"'],
        }
    ).to_csv(tmp_path / "anti_patterns_churn.csv", index=False)
    note = icp_note(tmp_path)
    # Only the churn report proposes it: that report is named, not "the churn and lost-deal
    # reports" (the lost-deal report said "lost deals give no exclude rule").
    assert note.endswith(
        "; the churn report proposes excluding accounts with product_hunt as "
        "signup, which the ICP has no rule on: on the data the ICP is chosen on (up to "
        "2026-03-31) they were not confirmed (not significant on those fewer quarters, or not "
        "again in its confirmation quarters: too little evidence, not evidence against), so the "
        "ICP leaves them out. The next quarterly run tests them again."
    )
    assert "monthly" not in note
    pd.DataFrame(
        {
            "rule_id": ["deals:industry:Retail"],
            "source": ["deals"],
            "status": ["candidate"],
            "attribute": ["industry"],
            "rule": ["industry = Retail"],
            "words": ["in Retail"],
            "value": ['"Retail"'],
        }
    ).to_csv(tmp_path / "anti_patterns_deals.csv", index=False)
    assert (
        "the churn and lost-deal reports propose excluding accounts with product_hunt as signup "
        "and accounts in Retail, which" in icp_note(tmp_path)
    )
    (tmp_path / "anti_patterns_churn.csv").unlink()
    assert "; the lost-deal report proposes excluding accounts in Retail" in icp_note(tmp_path)
    (tmp_path / "anti_patterns_deals.csv").unlink()
    predictors["recommended"] = predictors["recommended"][:1]
    (tmp_path / "icp_predictors.json").write_text(json.dumps(predictors), encoding="utf-8")
    assert icp_note(tmp_path) is None
    (tmp_path / "icp_predictors.json").unlink()
    assert icp_note(tmp_path) is None
