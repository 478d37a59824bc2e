"""Report kernels forked from a warm parent (icp_research.pipeline.kernels): each report still
gets a process of its own, the kernel manager can interrupt, kill and restart it, nothing
outlives the run, and the reports are the same as with kernels started as fresh interpreters."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from icp_research.pipeline import kernels
from icp_research.pipeline.runner import KernelPool, Progress, _shutdown, run_suite, start_zygote

pytestmark = pytest.mark.skipif(
    not kernels.fork_supported(), reason="kernels are forked on Linux only"
)


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie of ours counts as gone
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def _run(client, code: str, timeout: float = 60) -> dict:
    """Execute ``code``; the reply's content. ipykernel aborts a request that arrives just after
    an error (stop_on_error), as any kernel does: such a request is sent again."""
    for _ in range(50):
        msg_id = client.execute(code)
        while True:
            reply = client.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        if reply["content"]["status"] != "aborted":
            return reply["content"]
        time.sleep(0.1)
    return reply["content"]


def test_fork_can_be_turned_off(monkeypatch, tmp_path):
    monkeypatch.setenv(kernels.DISABLE_ENV, "1")
    assert not kernels.fork_enabled()
    assert kernels.fork_enabled(True)
    assert start_zygote(tmp_path) is None
    monkeypatch.setenv(kernels.DISABLE_ENV, "0")
    assert kernels.fork_enabled() and not kernels.fork_enabled(False)
    assert start_zygote(tmp_path, fork=False) is None


def test_forked_kernels_are_separate_processes_that_the_manager_controls(tmp_path):
    from jupyter_client.blocking import BlockingKernelClient
    from jupyter_core.utils import run_sync

    pool = KernelPool(["a", "b"], tmp_path, size=2, fork=True)
    zygote = pool.zygote
    assert zygote is not None
    taken = []
    try:
        taken = [pool.take("a"), pool.take("b")]
        pids = [km.provisioner.process.pid for km in taken]
        assert all(isinstance(km.provisioner.process, kernels.ForkedProcess) for km in taken)
        assert [_ppid(pid) for pid in pids] == [zygote.process.pid] * 2
        clients = []
        for km in taken:
            client = BlockingKernelClient()
            client.load_connection_info(km.get_connection_info())
            client.start_channels()
            client.wait_for_ready(timeout=60)
            clients.append(client)
        first, second = clients
        # Imported already (in the zygote), and each kernel's state is its own.
        assert _run(first, "import sys; shared = 'pandas' in sys.modules")["status"] == "ok"
        assert _run(first, "assert shared; x = 1; import os; os.getcwd()")["status"] == "ok"
        assert _run(second, "x")["ename"] == "NameError"
        assert _run(second, f"import os; assert os.getcwd() == {str(tmp_path)!r}")["status"] == (
            "ok"
        )
        assert _run(second, "import os; assert os.getpid() != os.getppid()")["status"] == "ok"
        # Interrupt: the running cell stops with KeyboardInterrupt, the kernel lives on.
        msg_id = first.execute("import time\nfor _ in range(600): time.sleep(0.1)")
        time.sleep(1.0)
        run_sync(taken[0].interrupt_kernel)()
        while True:
            reply = first.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert _run(first, "x + 1")["status"] == "ok"
        # Restart: a new process, forked again, without the old state.
        run_sync(taken[0].restart_kernel)(now=True)
        assert _gone(pids[0])
        new_pid = taken[0].provisioner.process.pid
        assert new_pid != pids[0] and _ppid(new_pid) == zygote.process.pid
        first.stop_channels()
        first = BlockingKernelClient()
        first.load_connection_info(taken[0].get_connection_info())
        first.start_channels()
        first.wait_for_ready(timeout=60)
        assert _run(first, "x")["ename"] == "NameError"
        first.stop_channels()
        # Kill: the manager sees it dead at once.
        second.stop_channels()
        taken[1].provisioner.process.kill()
        assert taken[1].provisioner.process.wait(timeout=10) == -signal.SIGKILL
        assert not run_sync(taken[1].is_alive)()
        assert _gone(pids[1])
    finally:
        for km in taken:
            _shutdown(km)
        pool.shutdown()
    assert pool.zygote is None and _gone(zygote.process.pid)
    assert not Path(zygote.path).exists()


def test_nothing_outlives_a_killed_run(tmp_path):
    """The run's process killed outright (SIGKILL, no clean-up): the zygote and the kernels
    it forked go too."""
    script = textwrap.dedent(
        f"""
        import json, sys, time
        from pathlib import Path
        from icp_research.pipeline.runner import KernelPool
        pool = KernelPool(["a", "b"], Path({str(tmp_path)!r}), size=2, fork=True)
        kms = [pool.take("a"), pool.take("b")]
        print(json.dumps([pool.zygote.process.pid] + [k.provisioner.process.pid for k in kms]))
        sys.stdout.flush()
        time.sleep(600)
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent)]
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        pids = json.loads(proc.stdout.readline())
        assert len(pids) == 3 and all(_ppid(pid) == pids[0] for pid in pids[1:])
    finally:
        proc.kill()
        proc.wait()
    assert all(_gone(pid) for pid in pids)


def _comparable_notebook(path: Path) -> list[str]:
    """The executed notebook without what differs between any two runs: papermill's timings,
    the injected-parameters cell's random id and object addresses in plain-text reprs."""
    cells = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.pop("id", None)
        cells.append(re.sub(r" at 0x[0-9a-f]+", " at 0x", json.dumps(cell, sort_keys=True)))
    return cells


def _comparable_run(run: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted(run.rglob("*")):
        name = str(path.relative_to(run))
        if not path.is_file():
            continue
        if name.endswith(".html"):  # apart from when it was made and how long reports took
            text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<when>", path.read_text("utf-8"))
            out[name] = re.sub(r"\d+(?:\.\d+)? s\b|\d+ min \d\d s", "<seconds>", text)
        elif name.endswith(".ipynb"):
            out[name] = _comparable_notebook(path)
        elif name.endswith("manifest.json"):
            manifest = json.loads(path.read_text(encoding="utf-8"))
            for key in ("started_at", "finished_at"):
                manifest.pop(key, None)
            for notebook in manifest.get("notebooks", []):
                notebook.pop("seconds", None)
            out[name] = manifest
        else:
            out[name] = path.read_bytes()
    return out


@pytest.mark.e2e
def test_forked_kernels_write_the_same_reports_as_fresh_ones(demo_run, tmp_path):
    """The whole demo suite, forked (the session's demo run) and with every kernel a fresh
    interpreter: every artifact, every executed notebook's outputs (figures included) and every
    HTML page are the same."""
    if not kernels.fork_enabled():
        pytest.skip(f"{kernels.DISABLE_ENV} is set: the session's demo run was not forked")
    cold = run_suite(
        demo=True, out=tmp_path / "reports" / "demo", progress=Progress(quiet=True), fork=False
    )
    statuses = [(o.name, o.status) for o in demo_run.outcomes]
    assert statuses == [(o.name, o.status) for o in cold.outcomes]
    forked, fresh = _comparable_run(demo_run.out_dir), _comparable_run(cold.out_dir)
    assert sorted(forked) == sorted(fresh)
    differ = [name for name in forked if forked[name] != fresh[name]]
    assert not differ
    assert any("image/png" in cell for cell in forked["01_pattern_discovery.ipynb"])


def test_kernels_forked_after_the_data_is_shared_do_not_read_it_again(tmp_path):
    """The zygote reads the run's snapshot once; a kernel forked afterwards opens the study from
    the rows it shares with its siblings (here the Parquet files are gone by then), and those
    rows are read-only: a report that changed them in place would fail, not change them for
    the next report."""
    from jupyter_client.blocking import BlockingKernelClient

    import icp_research as icp

    snapshot = tmp_path / "data"
    study = icp.open_study()
    study.precompute()
    study.dataset.save(snapshot)
    pool = KernelPool(["a"], tmp_path, size=1, fork=True)
    km = None
    try:
        assert pool.share_data(snapshot)
        for parquet in snapshot.glob("*.parquet"):
            parquet.unlink()
        km = pool.take("a")
        client = BlockingKernelClient()
        client.load_connection_info(km.get_connection_info())
        client.start_channels()
        client.wait_for_ready(timeout=60)
        code = textwrap.dedent(
            f"""
            import icp_research as icp
            study = icp.open_study(data_dir={str(snapshot)!r})
            assert len(study.tables["opportunities"]) == {len(study.tables["opportunities"])}
            assert len(study.deals) == {len(study.deals)} and len(study.facts) == {len(study.facts)}
            """
        )
        assert _run(client, code)["status"] == "ok"
        reply = _run(client, 'study.tables["opportunities"].loc[0, "amount"] = -1.0')
        assert reply["status"] == "error" and "read-only" in reply["evalue"]
        reply = _run(client, 'study.facts.loc[0, "arr_current"] = -1.0')
        assert reply["status"] == "error" and "read-only" in reply["evalue"]
        # Another date: the rows it changes (deals closed later are open again) are its own.
        code = textwrap.dedent(
            """
            before = (study.tables["opportunities"]["stage"] == "open").sum()
            earlier = study.at("2025-06-30")
            deals = earlier.tables["opportunities"]
            assert deals["closed_at"].max() <= earlier.as_of
            reopened = study.raw_tables["opportunities"].set_index("opportunity_id").loc[
                deals.loc[deals["stage"] == "open", "opportunity_id"], "closed_at"]
            assert (reopened > earlier.as_of).sum() > 100
            assert (study.tables["opportunities"]["stage"] == "open").sum() == before
            """
        )
        assert _run(client, code)["status"] == "ok"
        client.stop_channels()
    finally:
        if km is not None:
            _shutdown(km)
        pool.shutdown()


def test_forked_kernels_start_in_a_process_with_more_than_1024_open_files(tmp_path):
    """A run inside a process that holds many files (a notebook server, a long test session):
    descriptors above 1,024 are beyond ``select()``; talking to the zygote must still work."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.skip(f"this machine allows only {hard} open files per process")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1400), hard))
    read_end, write_end = os.pipe()
    held = [os.dup(read_end) for _ in range(1100)]
    pool = KernelPool(["a"], tmp_path, size=1, fork=True)
    km = None
    try:
        assert not pool.share_data(tmp_path / "no-snapshot-here")  # answered "failed", no error
        km = pool.take("a")
        assert isinstance(km.provisioner.process, kernels.ForkedProcess)
        assert km.provisioner.process.poll() is None
    finally:
        if km is not None:
            _shutdown(km)
        pool.shutdown()
        for fd in [*held, read_end, write_end]:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_report_client_does_not_wait_for_silence_once_the_kernel_answered(tmp_path):
    # jupyter_client's wait_for_ready always ends with 0.2 s of listening for more start-up
    # messages: 0.2 s per report, in series. The report client drains what is there and goes.
    import asyncio

    from icp_research.pipeline.runner import start_kernel

    km = start_kernel(tmp_path)
    try:
        warm = km.client()  # as the kernel pool does before a report takes the kernel
        warm.start_channels()
        asyncio.run(warm.wait_for_ready(timeout=60))
        warm.stop_channels()
        client = km.client()
        assert type(client).__name__ == "ReportClient"
        client.start_channels()

        async def ready_then_run():
            start = time.perf_counter()
            await client.wait_for_ready(timeout=60)
            waited = time.perf_counter() - start
            msg_id = client.execute("print(6 * 7)")
            reply = await client._async_get_shell_msg(timeout=30)
            outputs = []
            while True:
                msg = await client._async_get_iopub_msg(timeout=30)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue  # start-up messages left over are not this request's
                if msg["msg_type"] == "stream":
                    outputs.append(msg["content"]["text"])
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return waited, reply, outputs

        waited, reply, outputs = asyncio.run(ready_then_run())
        assert waited < 0.2
        assert reply["content"]["status"] == "ok" and outputs == ["42\n"]
        client.stop_channels()
    finally:
        _shutdown(km)


def test_kernels_of_finished_reports_are_stopped_by_the_end_of_the_run(project_with_notebooks):
    # Each report's kernel is shut down beside the next report, not before it starts: what
    # matters is that by the time the run returns every one of them is gone.
    config, notebooks, out = project_with_notebooks
    result = run_suite(
        config=config, out=out, notebooks_dir=notebooks, jobs=1, progress=Progress(quiet=True)
    )
    assert [o.status for o in result.outcomes] == ["ok"] * 3
    pids = [int((out / "artifacts" / f"pid{i}.txt").read_text()) for i in range(3)]
    assert len(set(pids)) == 3
    assert all(_gone(pid, within=1.0) for pid in pids)


@pytest.fixture
def project_with_notebooks(tmp_path):
    from .conftest import write_project
    from .test_runner import ACCOUNTS, CONFIG, OPPORTUNITIES, _notebook

    config = write_project(
        tmp_path / "project", {"accounts.csv": ACCOUNTS, "opportunities.csv": OPPORTUNITIES}, CONFIG
    )
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for i in range(3):
        _notebook(
            notebooks / f"0{i}_pid.ipynb",
            f"Pid {i}",
            f"import os\nfrom pathlib import Path\nPath(artifacts_dir, 'pid{i}.txt').write_text(str(os.getpid()))",
        )
    return config, notebooks, tmp_path / "reports" / "pids"


def test_the_command_starts_the_warm_parent_first_and_the_run_takes_it(tmp_path):
    # `icp-research run` starts the zygote before it imports the data stack (the package
    # imports nothing heavy), and the run forks its kernels from that one.
    code = textwrap.dedent(
        """
        import sys
        import icp_research.cli  # the command's own imports
        assert "pandas" not in sys.modules, "the package imports pandas at once"
        from icp_research.pipeline import kernels
        kernels.start_early_zygote()
        early = kernels._early[0]
        from icp_research.pipeline.runner import KernelPool
        pool = KernelPool(["a"], sys.argv[1], size=1)
        assert pool.zygote is early and not kernels._early
        pool.shutdown()
        assert not early.alive()
        kernels.start_early_zygote()  # a run that stops before it takes one ends it
        left = kernels._early[0]
        kernels.stop_early_zygote()
        assert not left.alive() and not kernels._early
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_a_malformed_message_does_not_print_a_traceback_into_the_run(tmp_path, capfd):
    """A message on a kernel's socket without the protocol's delimiter: the kernel drops it
    and answers the next one, and prints no traceback into the run's output (it read like the
    run's own failure); the kernel's other errors are still logged."""
    from jupyter_client.blocking import BlockingKernelClient

    pool = KernelPool(["a"], tmp_path, size=1, fork=True)
    km = None
    try:
        km = pool.take("a")
        client = BlockingKernelClient()
        client.load_connection_info(km.get_connection_info())
        client.start_channels()
        client.wait_for_ready(timeout=60)
        client.shell_channel.socket.send_multipart([b"not", b"a", b"message"])
        client.control_channel.socket.send_multipart([b"nor", b"this"])
        time.sleep(1.0)
        assert _run(client, "x = 41; x + 1")["status"] == "ok"
        check = textwrap.dedent(
            """
            import logging
            seen = []
            handler = logging.Handler()
            handler.emit = seen.append
            log = logging.getLogger("tornado.general")
            log.addHandler(handler)
            for error in (ValueError("DELIM not in msg_list"), ValueError("another")):
                try:
                    raise error
                except ValueError:
                    log.error("Uncaught exception in ZMQStream callback", exc_info=True)
            log.removeHandler(handler)
            assert [str(r.exc_info[1]) for r in seen] == ["another"], seen
            """
        )
        assert _run(client, check)["status"] == "ok"
        client.stop_channels()
    finally:
        if km is not None:
            _shutdown(km)
        pool.shutdown()
    err = capfd.readouterr().err
    # Only the other error's record was printed (once), none of the malformed messages'.
    assert "DELIM" not in err and err.count("Traceback") == 1, err
    assert "ValueError: another" in err


def test_the_kernelspec_folder_goes_when_the_process_that_made_it_ends(tmp_path):
    """A run registers its kernelspec in a private temporary folder: the folder is removed
    when the run's process exits (a forked child exiting first does not remove it)."""
    script = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from icp_research.pipeline import kernels
        kernels.ensure_kernel()
        folder = Path(os.environ["JUPYTER_PATH"].split(os.pathsep)[0])
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # a child that exits normally runs the exit handlers too
        os.waitpid(pid, 0)
        print(folder, (folder / "kernels").is_dir())
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent)]
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env["TMPDIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert out[1] == "True"  # the child's exit left it in place for the parent
    assert Path(out[0]).parent == tmp_path
    assert not Path(out[0]).exists()
    assert list(tmp_path.iterdir()) == []
