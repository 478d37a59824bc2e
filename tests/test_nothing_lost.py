"""Nothing lost: bad input stops `run` before it writes anything, Ctrl-C leaves the previous run
as it was, run folders cannot escape where they are asked to go."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbformat import v4

from icp_research.cli import main
from icp_research.errors import InputError
from icp_research.pipeline.runner import resolve_run

from .conftest import FIXTURES, REPO, write_project

BROKEN = FIXTURES / "broken"
# A representative subset of the corpus (tests/test_loading.py runs all of it via validate):
# config errors, unreadable files, row-level value errors and a cross-table error.
THROUGH_RUN = [
    "toml_syntax",
    "config_wrong_types",
    "missing_file",
    "binary_file",
    "wrong_encoding",
    "excel_not_excel",
    "misnamed_column",
    "duplicate_ids",
    "bad_dates",
    "unmapped_stage",
    "out_of_range_date",
    "unknown_accounts",
]


def _notebook(path: Path, code: str, requires=("accounts",)) -> None:
    import nbformat

    params = v4.new_code_cell('config: str = ""  # config\nartifacts_dir: str = ""  # output')
    params.metadata["tags"] = ["parameters"]
    nb = v4.new_notebook(cells=[v4.new_markdown_cell(f"# {path.stem}"), params])
    nb.cells.append(v4.new_code_cell(code))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["icp_research"] = {"title": path.stem, "requires": list(requires)}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def one_notebook(tmp_path_factory) -> Path:
    """A notebook folder with one quick report, so that a run starts one kernel, not seven."""
    folder = tmp_path_factory.mktemp("notebooks")
    _notebook(folder / "00_quick.ipynb", "1 + 1")
    return folder


@pytest.fixture(scope="module")
def no_kernel(tmp_path_factory) -> Path:
    """A report that needs a table none of the broken projects configures: the runner starts
    no kernel for it, so these runs cost only the loading (what they test)."""
    folder = tmp_path_factory.mktemp("notebooks")
    _notebook(folder / "00_survey.ipynb", "1 + 1", requires=("survey",))
    return folder


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("case", THROUGH_RUN)
def test_run_on_broken_input_exits_2_with_one_line_per_problem_and_writes_nothing(
    case, tmp_path, no_kernel, capsys
):
    from icp_research.data.validation import validate

    inputs = BROKEN / case
    before = _digest(inputs)
    out = tmp_path / "reports" / "q3" / "run"
    code = main(
        [
            "run",
            "--config",
            str(inputs / "icp.toml"),
            "--out",
            str(out),
            "--notebooks",
            str(no_kernel),
        ]
    )
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    for expected in filter(None, (inputs / "expected.txt").read_text().splitlines()):
        assert any(expected in line for line in errors), (expected, errors)
    try:
        problems = len(validate(inputs / "icp.toml").errors)
    except InputError as exc:  # the config itself is wrong: one line per config problem
        problems = len(exc.problems)
    assert len(errors) == problems
    # Nothing written: not the run, not its parent folders, no staging folder.
    assert list(tmp_path.iterdir()) == []
    assert _digest(inputs) == before


def test_run_verbose_adds_the_rows_their_values_and_the_warnings(tmp_path, no_kernel, capsys):
    config = write_project(
        tmp_path / "project",
        {
            "accounts.csv": "account_id,employees\nA1,ten\nA2,5\nA3,n.a.\n",
            "opportunities.csv": "opportunity_id,account_id,stage,created_at\nO1,A9,won,2024-01-01\n",
        },
        '[tables.accounts]\npath = "accounts.csv"\n[tables.opportunities]\npath = "opportunities.csv"\n',
    )
    args = ["run", "--config", str(config), "--out", str(tmp_path / "out")]
    args += ["--notebooks", str(no_kernel)]
    assert main(args) == 2
    # Progress lines start with the time ("[   0.1s] loading data ..."); the rest are errors.
    quiet = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[")]
    assert len(quiet) == 2 and all(line.startswith("error: ") for line in quiet)
    assert main([*args, "--verbose"]) == 2
    verbose = capsys.readouterr()
    assert '    row 2: "ten"' in verbose.err and '    row 4: "n.a."' in verbose.err
    assert "warning: opportunities.csv: no closed_at column" in verbose.out
    assert "Traceback" not in verbose.err
    assert not (tmp_path / "out").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("stop", ["ctrl-c", "ctrl-c at once", "sigterm"])
def test_an_interrupted_run_leaves_the_previous_run_intact(tmp_path, stop):
    """A real Ctrl-C (SIGINT to the process group, as a terminal sends it), or a scheduler's
    SIGTERM to the process, while a notebook runs (or, "at once", while its kernel still
    starts): exit 130, one line, the run it was replacing untouched, no staging folder, no
    kernel left behind."""
    config = write_project(
        tmp_path / "project",
        {"accounts.csv": "account_id\nA1\nA2\n"},
        '[tables.accounts]\npath = "accounts.csv"\n',
    )
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "00_slow.ipynb", "import time\ntime.sleep(120)")
    previous = tmp_path / "reports" / "2024Q4"
    (previous / "artifacts").mkdir(parents=True)
    (previous / "artifacts" / "manifest.json").write_text('{"run": "2024Q4"}')
    (previous / "index.html").write_text("<p>last quarter</p>")
    before = _digest(previous)

    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    # As from a terminal: Ctrl-C raises KeyboardInterrupt even when this test session was
    # started in the background of a script (which makes the children ignore SIGINT).
    start = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('icp_research.cli', run_name='__main__')"
    )
    command = [sys.executable, "-c", start, "run", "--config", str(config)]
    command += ["--out", str(previous), "--force", "--notebooks", str(notebooks)]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        cwd=str(tmp_path), start_new_session=True,
    )  # fmt: skip
    lines = []
    for line in process.stderr:  # wait until the notebook is running
        lines.append(line)
        if "00_slow: running" in line:
            break
    time.sleep(0.0 if stop == "ctrl-c at once" else 1.5)
    interrupted = time.monotonic()
    if stop.startswith("ctrl-c"):
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, "".join(lines) + err
    assert time.monotonic() - interrupted < 20  # it stops, it does not finish the notebook
    assert err.strip().splitlines()[-1] == (
        "interrupted: nothing was written; earlier runs are untouched"
    )
    assert "Traceback" not in err and out == ""
    assert _digest(previous) == before
    assert sorted(p.name for p in previous.parent.iterdir()) == ["2024Q4"]
    assert _processes_in(tmp_path) == []


def _processes_in(folder: Path, grace: float = 5.0) -> list[int]:
    """Processes whose working folder is inside ``folder`` (kernels start in the run folder);
    waits up to ``grace`` seconds for them to notice their parent is gone."""
    deadline = time.monotonic() + grace
    while True:
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if cwd.startswith(str(folder)) and int(proc.name) != os.getpid():
                found.append(int(proc.name))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.parametrize(
    "out, message",
    [
        ("..", "is not allowed"),
        ("reports/..", "'..' is not allowed"),
        ("reports/../../etc/q3", "'..' is not allowed"),
        ("reports/./../q3", "'..' is not allowed"),
        ("./..", "'..' is not allowed"),
        (".", "is not allowed"),
        ("/", "is not allowed"),
        ("reports/.hidden", "is not allowed"),
        ("reports/q3 final", "is not allowed"),
        ("reports/q3;rm -rf ~", "is not allowed"),
        ("reports/..\\..\\q3", "is not allowed"),
        ("reports/" + "q" * 65, "is not allowed"),
        ("reports/räport", "is not allowed"),
    ],
)
def test_run_folders_cannot_escape(tmp_path, out, message):
    config = write_project(tmp_path, {}, '[tables.accounts]\npath = "a.csv"\n')
    with pytest.raises(InputError, match=message):
        resolve_run(config=config, demo=False, quarter=None, out=out)


def test_absolute_and_quarter_run_folders(tmp_path):
    config = write_project(tmp_path, {}, '[tables.accounts]\npath = "a.csv"\n')
    _, _, out_dir, name = resolve_run(config=config, demo=False, quarter=None, out=tmp_path / "r")
    assert out_dir == tmp_path / "r" and name == "r"
    _, as_of, out_dir, name = resolve_run(config=config, demo=False, quarter="2026q3", out=None)
    assert name == "2026Q3" and out_dir == tmp_path / "reports" / "2026Q3"
    assert as_of.isoformat() == "2026-09-30"
    for quarter in ("2026Q3/..", "../2026Q3", "2026Q0", "Q3", "2026Q3; rm -rf ~"):
        with pytest.raises(InputError, match="is not a quarter"):
            resolve_run(config=config, demo=False, quarter=quarter, out=None)


def test_a_symlinked_run_folder_is_checked_and_replaced_cleanly(tmp_path, one_notebook):
    from icp_research.pipeline.runner import Progress, run_suite

    config = write_project(
        tmp_path / "project",
        {"accounts.csv": "account_id\nA1\n"},
        '[tables.accounts]\npath = "accounts.csv"\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "thesis.docx").write_text("do not lose me")
    reports = tmp_path / "reports"
    reports.mkdir()
    link = reports / "q3"
    link.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InputError, match="not an icp-research run"):
        run_suite(config=config, out=link, notebooks_dir=one_notebook, force=True)
    # A link to an earlier run: replaced by the new run; the run it pointed at stays as it was.
    (elsewhere / "thesis.docx").unlink()
    (elsewhere / "artifacts").mkdir()
    (elsewhere / "artifacts" / "manifest.json").write_text("{}")
    before = _digest(elsewhere)
    with pytest.raises(InputError, match="pass --force"):
        run_suite(config=config, out=link, notebooks_dir=one_notebook)
    run_suite(
        config=config, out=link, notebooks_dir=one_notebook, force=True, progress=Progress(True)
    )
    assert not link.is_symlink() and (link / "00_quick.html").exists()
    assert _digest(elsewhere) == before
    assert sorted(p.name for p in reports.iterdir()) == ["index.html", "q3"]


def _tiny_project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "project",
        {"accounts.csv": "account_id\nA1\n"},
        '[tables.accounts]\npath = "accounts.csv"\n',
    )


def test_a_folder_made_at_out_during_the_run_is_never_replaced(tmp_path, one_notebook, monkeypatch):
    from icp_research.pipeline import runner

    config = _tiny_project(tmp_path)
    out = tmp_path / "reports" / "q3"
    render_all = runner._render_index

    def user_creates_out_meanwhile(*args, **kwargs):
        render_all(*args, **kwargs)
        out.mkdir(parents=True)
        (out / "notes.txt").write_text("mine")

    monkeypatch.setattr(runner, "_render_index", user_creates_out_meanwhile)
    with pytest.raises(InputError, match="not an icp-research run"):
        runner.run_suite(config=config, out=out, notebooks_dir=one_notebook, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # Nothing of the failed run is left beside it: no staging folder, no lock.
    assert sorted(p.name for p in out.parent.iterdir()) == ["q3"]


def test_a_second_run_into_the_same_out_is_refused_while_the_first_holds_it(tmp_path, one_notebook):
    from icp_research.pipeline.runner import RunLock, run_suite

    config = _tiny_project(tmp_path)
    out = tmp_path / "reports" / "q3"
    out.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (out.parent / ".q3.icp-lock").write_text(str(holder.pid))
        with pytest.raises(
            InputError, match=f"another icp-research run \\(process {holder.pid}\\)"
        ):
            run_suite(config=config, out=out, notebooks_dir=one_notebook)
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock is stale and the next run takes it over, then lets it go.
    run_suite(config=config, out=out, notebooks_dir=one_notebook)
    assert (out / "00_quick.html").exists() and not (out.parent / ".q3.icp-lock").exists()
    lock = RunLock(out)
    lock.acquire()
    assert (out.parent / ".q3.icp-lock").read_text() == str(os.getpid())
    lock.release()


def test_a_site_index_beside_the_run_is_not_overwritten(tmp_path, one_notebook):
    from icp_research.pipeline.runner import run_suite

    config = _tiny_project(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>home</h1>")
    run_suite(config=config, out=site / "icp", notebooks_dir=one_notebook)
    assert (site / "index.html").read_text() == "<h1>home</h1>"
    assert (site / "icp" / "index.html").exists()
    # The kit's own runs index is still refreshed where it is the kit's.
    reports = tmp_path / "reports"
    run_suite(config=config, out=reports / "a", notebooks_dir=one_notebook)
    first = (reports / "index.html").read_text()
    run_suite(config=config, out=reports / "b", notebooks_dir=one_notebook)
    assert (reports / "index.html").read_text() != first and ">b<" in (
        reports / "index.html"
    ).read_text()


def test_staging_left_by_a_killed_run_is_removed_by_the_next(tmp_path, one_notebook):
    from icp_research.pipeline.runner import run_suite

    config = _tiny_project(tmp_path)
    reports = tmp_path / "reports"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = reports / f".q3.partial-{gone.pid}-abc123"
    live = reports / f".q4.partial-{os.getpid()}-def456"
    foreign = reports / ".partial-notes"
    for folder in (stale, live, foreign):
        (folder / "artifacts" / "data").mkdir(parents=True)
        (folder / "artifacts" / "data" / "accounts.parquet").write_text("customer data")
    run_suite(config=config, out=reports / "q3", notebooks_dir=one_notebook)
    assert not stale.exists()
    assert live.exists() and foreign.exists()  # a live run's, and a name that is not the kit's


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "-1"], "--jobs -1 must be a whole number of 1 or more"),
        (["--jobs", "0"], "--jobs 0 must be a whole number of 1 or more"),
        (["--timeout", "0"], "--timeout 0.0 must be a number of seconds above 0"),
        (["--out", "."], "--out . is not allowed: give the run its own folder"),
    ],
)
def test_run_flags_out_of_range_exit_2_with_one_line(tmp_path, args, message, capsys, monkeypatch):
    config = _tiny_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--config", str(config), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_one_report_that_never_ends_is_stopped_by_the_timeout(tmp_path):
    from icp_research.pipeline.runner import Progress, run_suite

    config = _tiny_project(tmp_path)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "00_quick.ipynb", "1 + 1")
    _notebook(notebooks / "01_stuck.ipynb", "import time\ntime.sleep(600)")
    started = time.monotonic()
    result = run_suite(
        config=config,
        out=tmp_path / "reports" / "t",
        notebooks_dir=notebooks,
        timeout=3,
        progress=Progress(quiet=True),
    )
    assert time.monotonic() - started < 60
    status = {o.name: (o.status, o.error) for o in result.outcomes}
    assert status["00_quick"] == ("ok", None)
    assert status["01_stuck"][0] == "failed"
    assert "longer than the 3 s limit" in status["01_stuck"][1]
    assert result.exit_code == 1
