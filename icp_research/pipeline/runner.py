"""Running the report suite: load once, execute every notebook with papermill, render HTML.

The run is built in a hidden staging folder next to its destination and moved into place only
when it is complete, so an interrupted run (Ctrl-C, a killed kernel, a full disk) leaves the
previous run intact and never a half-written one that looks finished.

Layout of a run (a contract; see the README)::

    <run>/index.html                 status of every notebook, headline numbers
    <run>/NN_<name>.html             stakeholder report (no code)
    <run>/NN_<name>.ipynb            executed notebook (kept on failure, for debugging)
    <run>/artifacts/manifest.json    versions, inputs (sha256, rows), statuses, seconds
    <run>/artifacts/data/            the canonical tables the notebooks read (Parquet)
    <run>/artifacts/*.csv|json       machine-readable results of each analysis
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from icp_research.analyses import registry
from icp_research.bundled import notebooks_dir as notebooks_dir_default
from icp_research.data.config import (
    Config,
    load_config,
    quarter_end,
    quarter_label,
    resolve_quarter,
)
from icp_research.data.loading import Dataset, load_tables
from icp_research.errors import IcpError, InputError, RunExistsError
from icp_research.pipeline.cache import CACHE_DIR, ReportCache, config_digest, resolve_only
from icp_research.pipeline.kernels import BLAS_THREADS, KERNEL_NAME, ensure_kernel  # noqa: F401
from icp_research.version import __version__

UMASK = os.umask(0o022)
os.umask(UMASK)
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# ---------------------------------------------------------------------------------------------
# Progress


class Progress:
    """Terminal progress lines on stderr; ``quiet`` prints errors only, ``verbose`` adds detail."""

    def __init__(self, quiet: bool = False, verbose: bool = False, stream=None):
        self.quiet, self.verbose = quiet, verbose
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._start = time.perf_counter()

    def _write(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def step(self, text: str) -> None:
        if not self.quiet:
            self._write(f"[{time.perf_counter() - self._start:6.1f}s] {text}")

    def detail(self, text: str) -> None:
        if self.verbose and not self.quiet:
            self._write(f"          {text}")

    def error(self, text: str) -> None:
        self._write(text)


# ---------------------------------------------------------------------------------------------
# Notebooks


@dataclass
class NotebookSpec:
    path: Path
    name: str
    title: str
    requires: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    parameters: set[str] = field(default_factory=set)
    #: Typical seconds, for the order when no earlier run timed it (``metadata.icp_research.cost``).
    cost: float = 0.0


def discover_notebooks(directory: Path | None = None) -> list[NotebookSpec]:
    """Report notebooks (``NN_name.ipynb``) in reading order, with their declared needs.

    The kit's reports take the tables they need and the reports they read from from the registry
    (:mod:`icp_research.analyses.registry`). A notebook of your own declares them in its metadata:
    ``metadata.icp_research.requires`` (``"a|b"`` means either) and ``after`` (the notebooks
    whose artifacts it reads). Read as plain JSON: validating with nbformat would cost a second.
    """
    specs = []
    directory = Path(directory) if directory is not None else notebooks_dir_default()
    for path in sorted(directory.glob("[0-9][0-9]_*.ipynb")):
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable notebook ({exc})") from None
        meta = dict(nb.get("metadata", {}).get("icp_research", {}))
        registered = registry.ANALYSES_BY_NOTEBOOK.get(path.stem)
        if registered is not None:
            meta.update(
                title=registered.title,
                requires=list(registered.requires),
                after=registered.after(),
                cost=registered.cost,
            )
        cells = nb.get("cells", [])
        title = meta.get("title") or _first_heading(cells) or path.stem
        parameters = set()
        for cell in cells:
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                source = _source(cell)
                parameters = set(
                    re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=]+)?=", source, re.MULTILINE)
                )
                break
        specs.append(
            NotebookSpec(
                path,
                path.stem,
                title,
                list(meta.get("requires", [])),
                list(meta.get("after", [])),
                parameters,
                float(meta.get("cost") or 0),
            )
        )
    return specs


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _first_heading(cells: list) -> str | None:
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            match = re.search(r"^#\s+(.+)$", _source(cell), re.MULTILINE)
            if match:
                return match.group(1).strip()
    return None


def missing_requirement(spec: NotebookSpec, dataset: Dataset) -> str | None:
    """Why the notebook cannot run on this data (e.g. 'no subscriptions table'), or None."""
    for requirement in spec.requires:
        options = [r.strip() for r in requirement.split("|")]
        if not any(dataset.has(option) for option in options):
            return "no " + " or ".join(options) + (" table" if len(options) == 1 else " tables")
    return None


# ---------------------------------------------------------------------------------------------
# Kernel


def _quiet_kernel_logs() -> None:
    """Silence jupyter_client / papermill chatter that is not about the user's run."""
    import logging
    import warnings

    for name in ("papermill", "traitlets", "nbclient", "jupyter_client", "asyncio"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*running over TCP.*")
    warnings.filterwarnings("ignore", message=".*Jupyter is migrating.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")


WARMUP = (
    "import icp_research.data.study, icp_research.reporting.display, pandas, scipy.stats, seaborn, "
    "matplotlib.pyplot, statsmodels.stats.multitest"
)


class KernelPool:
    """Kernels started (and their imports warmed) ahead of the notebooks that will use them.

    Kernel start-up and the scientific imports are most of a small report's cost; warming a
    kernel while the data loads, or while the previous notebooks run, hides that cost. At most
    ``size`` kernels wait warm at a time (one per parallel slot): each one taken starts the
    next, so that a large run does not hold a warm kernel per notebook in memory. Each kernel
    serves exactly one notebook, so notebooks stay isolated from each other.
    """

    def __init__(
        self, names: list[str], cwd: Path, size: int | None = None, fork: bool | None = None
    ):
        # Imported here, on the calling thread: a warm-up thread importing jupyter_client while
        # the runner imports papermill (which imports it too) can see it half initialised.
        import jupyter_client.blocking  # noqa: F401
        import jupyter_client.manager  # noqa: F401

        self.cwd = Path(cwd).resolve()
        # Kernels forked from one warm parent (see icp_research.pipeline.kernels); started on
        # this thread, which outlives the run's kernels.
        self.zygote = start_zygote(self.cwd, fork) if names else None
        # Forked kernels wait for the run's data to be in the zygote (share_data), so that they
        # share it instead of each reading its own copy; fresh ones warm up while it loads.
        self._data_ready = threading.Event()
        if self.zygote is None:
            self._data_ready.set()
        self._closing = False
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self._managers: dict[int, object] = {}  # started and not taken (to stop on abort)
        self._ready: queue.Queue = queue.Queue()  # warmed managers (None: a warm-up failed)
        self._to_start = len(names)
        self._warming = 0
        self._threads: list[threading.Thread] = []
        self._retiring: list[threading.Thread] = []  # kernels of finished reports, stopping
        size = size or max(2, os.cpu_count() or 2)
        for _ in range(min(size, len(names))):
            self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            if self._to_start <= 0 or self._aborted.is_set():
                return
            self._to_start -= 1
            self._warming += 1
            thread = threading.Thread(target=self._start, daemon=True)
            self._threads.append(thread)
        thread.start()

    def _start(self) -> None:
        km = None
        try:
            from jupyter_client.blocking import BlockingKernelClient

            while not self._data_ready.wait(0.1):
                if self._aborted.is_set() or self._closing:
                    raise RuntimeError("the run stopped")
            km = start_kernel(self.cwd, self.zygote)
            with self._lock:
                self._managers[id(km)] = km
            if self._aborted.is_set():
                raise RuntimeError("the run stopped")
            client = BlockingKernelClient()
            client.load_connection_info(km.get_connection_info())
            client.start_channels()
            try:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        client.wait_for_ready(timeout=1)
                        break
                    except RuntimeError:
                        if self._aborted.is_set() or time.monotonic() > deadline:
                            raise
                client.execute(WARMUP, silent=True, store_history=False)
                # Waited for in short slices, so that a stopped run does not wait for it.
                deadline = time.monotonic() + 300
                while True:
                    try:
                        client.get_shell_msg(timeout=0.5)
                        break
                    except queue.Empty:
                        if self._aborted.is_set() or time.monotonic() > deadline:
                            raise
            finally:
                client.stop_channels()
            self._ready.put(km)
        except Exception:  # a kernel that fails to warm up is replaced by a cold one
            if km is not None:
                with self._lock:
                    self._managers.pop(id(km), None)
                _shutdown(km)
            self._ready.put(None)
        finally:
            with self._lock:
                self._warming -= 1

    def take(self, name: str):
        """A warmed kernel manager for the notebook ``name``; a fresh (cold) one if none is
        ready or coming. Taking one starts warming the next."""
        self._data_ready.set()  # no data to share after all: kernels start as they are
        km = None
        deadline = time.monotonic() + 300
        while True:
            if self._aborted.is_set():
                raise RuntimeError("the run stopped")
            try:
                km = self._ready.get(timeout=0.2)
                break
            except queue.Empty:
                with self._lock:
                    coming = self._warming > 0
                if not coming or time.monotonic() > deadline:
                    break
        if km is not None:
            with self._lock:
                self._managers.pop(id(km), None)
        self._spawn()
        if self._aborted.is_set():
            if km is not None:
                _kill_now(km)
            raise RuntimeError("the run stopped")
        if km is not None and not _alive(km):
            _shutdown(km)
            km = None
        return km if km is not None else start_kernel(self.cwd, self.zygote)

    def share_data(self, directory: Path | None, meanwhile=None) -> bool:
        """Have the zygote read the run's data snapshot before it forks the report kernels
        (they then share its rows, copy-on-write); False when it could not (the kernels read
        the snapshot themselves, as fresh kernels always do). ``None``: nothing to share, the
        kernels may start. ``meanwhile`` is called on this thread while the zygote works (it
        may still be importing the stack): the wait is otherwise idle."""
        shared = False
        try:
            if directory is not None and self.zygote is not None and self.zygote.alive():
                if meanwhile is None:
                    shared = self.zygote.share(directory)
                else:
                    # The waiting (socket reads only) moves to a helper thread, so that the
                    # imports of ``meanwhile`` stay on the calling thread.
                    answer: list[bool] = []
                    waiter = threading.Thread(
                        target=lambda: answer.append(self.zygote.share(directory)), daemon=True
                    )
                    waiter.start()
                    try:
                        meanwhile()
                    finally:
                        waiter.join()
                    shared = bool(answer and answer[0])
            elif meanwhile is not None:
                meanwhile()
        finally:
            self._data_ready.set()
        return shared

    def _started(self) -> list:
        with self._lock:
            return list(self._managers.values())

    def retire(self, km) -> None:
        """Shut down the kernel of a report that is done, on a thread of its own: the next
        report need not wait for it (0.1 s a kernel). :meth:`shutdown` and :meth:`abort`
        wait for these."""
        thread = threading.Thread(target=_shutdown, args=(km,), daemon=True)
        with self._lock:
            self._retiring.append(thread)
        thread.start()

    def _join_retiring(self, timeout: float) -> None:
        with self._lock:
            retiring, self._retiring = self._retiring, []
        give_up = time.monotonic() + timeout
        for thread in retiring:
            thread.join(timeout=max(0.0, give_up - time.monotonic()))

    def shutdown(self) -> None:
        """Stop every kernel that was started but not taken."""
        self._closing = True
        with self._lock:
            self._to_start = 0
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=60)
        self._join_retiring(60)
        for km in self._started():
            _shutdown(km)
        with self._lock:
            self._managers.clear()
        self._stop_zygote()

    def _stop_zygote(self) -> None:
        """End the zygote and any kernel of it still running (all were shut down by now)."""
        zygote, self.zygote = self.zygote, None
        if zygote is not None:
            zygote.stop()

    def abort(self) -> None:
        """Stop at once (the run failed or was interrupted): kill kernels, wait for no warm-up."""
        self._aborted.set()
        with self._lock:
            self._to_start = 0
            threads = list(self._threads)
        for km in self._started():
            _kill_now(km)
        # The warm-up threads notice within a second; one still starting a kernel shuts that
        # kernel down itself (and a kernel whose parent is gone exits on its own).
        give_up = time.monotonic() + 3
        for thread in threads:
            thread.join(timeout=max(0.0, give_up - time.monotonic()))
        self._join_retiring(5)
        for km in self._started():
            _shutdown(km)
        with self._lock:
            self._managers.clear()
        self._stop_zygote()


def start_zygote(cwd: Path, fork: bool | None = None):
    """The warm parent that report kernels are forked from, or None (not on this platform,
    ``ICP_RESEARCH_NO_FORK=1``, ``fork=False``, or it could not start): kernels start cold."""
    from icp_research.pipeline import kernels

    if not kernels.fork_enabled(fork):
        return None
    early = kernels.take_early_zygote()
    if early is not None:
        return early
    try:
        spec = kernels.kernel_spec()
        return kernels.Zygote(spec["argv"], spec.get("env", {}), Path(cwd))
    except Exception:
        return None


def start_kernel(cwd: Path, zygote=None):
    """Start a kernel of this Python in ``cwd`` (set on the process, never by chdir here);
    forked from ``zygote`` when one is given (a fresh interpreter if it cannot serve).

    An async manager, as papermill itself would make: its client can be cancelled when the
    kernel dies, where a blocking one would wait forever.
    """
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(
        kernel_name=ensure_kernel(), client_class="icp_research.pipeline.kernels.ReportClient"
    )
    if zygote is not None and zygote.alive():
        from icp_research.pipeline.kernels import forking_provisioner

        km.provisioner = forking_provisioner(km, zygote)
    run_sync(km.start_kernel)(cwd=str(cwd))
    return km


def _alive(km) -> bool:
    from jupyter_core.utils import run_sync

    try:
        return bool(run_sync(km.is_alive)())
    except Exception:
        return False


def _kill_now(km) -> None:
    """Kill a kernel's process from any thread (a running notebook then stops with an error)."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    try:
        if process is not None and process.poll() is None:
            process.kill()
    except Exception:
        pass


def _shutdown(km) -> None:
    from jupyter_core.utils import run_sync

    # Killed first: jupyter_client interrupts a kernel (SIGINT) before it kills it, and a
    # kernel still starting up (a run stopped at once) prints KeyboardInterrupt's traceback
    # into the run's output. A finished report's kernel has nothing left to do either way.
    _kill_now(km)
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:
        pass


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class NotebookOutcome:
    name: str
    title: str
    status: str  # ok / skipped / failed
    reason: str | None = None
    failed_cell: int | None = None
    error: str | None = None
    seconds: float = 0.0
    html: str | None = None
    ipynb: str | None = None
    key_finding: str | None = None
    # Copied from the cache: nothing it depends on changed since the run that made it.
    reused: bool = False

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict
    outcomes: list[NotebookOutcome]

    @property
    def exit_code(self) -> int:
        return 1 if any(o.status == "failed" for o in self.outcomes) else 0


def resolve_run(
    *,
    config: str | Path | Config | None,
    demo: bool,
    quarter: str | None,
    out: str | Path | None,
) -> tuple[Config, dt.date | None, Path, str]:
    """Work out the config, as-of date, output folder and run name; validate them."""
    if demo:
        from icp_research.data.demo import DEMO_CONFIG

        cfg = load_config(DEMO_CONFIG)
    elif config is None:
        raise InputError("give --config icp.toml (or --demo for the bundled demo data)")
    else:
        cfg = config if isinstance(config, Config) else load_config(config)
    quarter = resolve_quarter(quarter) if quarter else None
    as_of = quarter_end(quarter) if quarter else cfg.as_of
    if out is None:
        reports = Path("reports") if demo else cfg.reports_dir
        name = (
            quarter_label(as_of)
            if quarter
            else ("demo" if demo else (as_of.isoformat() if as_of else "latest"))
        )
        if demo and quarter:
            name = f"demo-{quarter_label(as_of)}"
        out_dir = reports / name
    else:
        raw = str(out)
        if any(part == ".." for part in Path(raw).parts):
            raise InputError(f"--out {raw}: '..' is not allowed in a run folder; give a plain path")
        out_dir = Path(raw)
        if not out_dir.name or out_dir.resolve() == Path.cwd().resolve():
            raise InputError(
                f"--out {raw} is not allowed: give the run its own folder, e.g. --out reports/2026Q3 "
                "(the run folder is replaced as a whole on --force)"
            )
    run_name = out_dir.name
    if not RUN_NAME.match(run_name):
        raise InputError(
            f"run folder name '{run_name}' is not allowed; use letters, digits, '.', '_' or '-' "
            "(e.g. 2026Q3)"
        )
    return cfg, as_of, out_dir, run_name


def check_destination(out_dir: Path, force: bool) -> None:
    """Refuse to overwrite an existing run without --force, and anything else at all."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a folder; choose another --out")
    is_run = (out_dir / "artifacts" / "manifest.json").exists()
    if not is_run and any(out_dir.iterdir()):
        raise InputError(
            f"{out_dir} exists and is not an icp-research run; refusing to replace it "
            "(choose another --out)"
        )
    if is_run and not force:
        raise RunExistsError(
            f"{out_dir} already holds a run; pass --force to replace it, or choose another --out"
        )


#: The longest one step (cell) of a report may run, in seconds (``--timeout``).
DEFAULT_CELL_TIMEOUT = 1800.0
_STAGING = re.compile(r"^\.(?P<run>.+)\.(?:partial|old)-(?:(?P<pid>\d+)-)?[A-Za-z0-9_]+$")


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class RunLock:
    """A lock file beside the run folder (``.NAME.icp-lock`` holding the owner's pid).

    Taken for the whole run, so two runs into the same ``--out`` cannot both publish; a lock
    left by a killed run (its pid is gone) is taken over.
    """

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir).parent / f".{Path(out_dir).name}.icp-lock"
        self.out_dir = Path(out_dir)
        self.held = False

    def acquire(self) -> None:
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text(encoding="ascii").strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and _process_alive(pid):
                    raise InputError(
                        f"another icp-research run (process {pid}) is writing {self.out_dir}; "
                        "wait for it to finish, or choose another --out"
                    ) from None
                self.path.unlink(missing_ok=True)  # left by a run that was killed
                continue
            except OSError as exc:
                raise InputError(
                    f"cannot write in {self.out_dir.parent} ({exc.strerror}); choose another --out"
                ) from None
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(str(os.getpid()))
            self.held = True
            return
        raise InputError(f"could not lock {self.out_dir}; try again, or choose another --out")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def remove_stale_staging(folder: Path, progress: Progress | None = None) -> list[Path]:
    """Delete staging folders (``.NAME.partial-PID-*``, ``.NAME.old-*``) whose run was killed.

    Only the kit's own names, and only when the process that made them is gone (older folders
    without a pid: when untouched for a day). They hold a copy of customer data, so they must
    not stay behind. Returns the removed folders.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _STAGING.match(entry.name)
        if not match or entry.is_symlink() or not entry.is_dir():
            continue
        pid = match.group("pid")
        if pid is not None:
            stale = not _process_alive(int(pid))
        else:
            try:
                stale = time.time() - entry.stat().st_mtime > 86_400
            except OSError:
                continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
            if progress is not None:
                progress.detail(f"removed {entry.name}, left by a run that was stopped")
    return removed


def run_suite(
    *,
    config: str | Path | Config | None = None,
    demo: bool = False,
    quarter: str | None = None,
    out: str | Path | None = None,
    jobs: int | None = None,
    force: bool = False,
    notebooks_dir: str | Path | None = None,
    timeout: float | None = DEFAULT_CELL_TIMEOUT,
    only: str | list[str] | None = None,
    cache: bool = True,
    progress: Progress | None = None,
    fork: bool | None = None,
) -> RunResult:
    """Run every report notebook and write the run folder; the Python face of ``icp-research run``.

    Raises :class:`InputError` (exit 2) before writing anything when the config, the data or the
    destination is not usable. Returns a :class:`RunResult`; its ``exit_code`` is 1 when a
    notebook failed (the others are still rendered). ``timeout`` is the longest one step (cell) of
    a report may run, in seconds: a report that exceeds it fails, the others go on. ``only``
    (``--only 04,05``) runs those reports and what they read from; ``cache`` False
    (``--no-cache``) reruns reports whose inputs, parameters and code did not change (see
    :mod:`icp_research.pipeline.cache`). ``fork`` False starts every report kernel as a fresh
    interpreter instead of forking it from a warm parent (None: unless ``ICP_RESEARCH_NO_FORK``
    is set; see :mod:`icp_research.pipeline.kernels`); the reports are the same either way.

    The destination is locked for the whole run (a second run into the same ``--out`` is refused
    while the first is going) and checked again just before the finished run is moved into place,
    so a folder that appeared meanwhile is never replaced; only a previous run is, with ``force``.
    """
    progress = progress or Progress()
    started = dt.datetime.now(dt.timezone.utc)
    cfg, as_of, out_dir, run_name = resolve_run(config=config, demo=demo, quarter=quarter, out=out)
    check_destination(out_dir, force)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise InputError(f"--jobs {jobs} must be a whole number of 1 or more (e.g. --jobs 2)")
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise InputError(f"--timeout {timeout} must be a number of seconds above 0, e.g. 900")

    # --notebooks, else the project's own copy ([project] notebooks), else the kit's.
    notebooks_dir = Path(notebooks_dir or cfg.notebooks_dir or notebooks_dir_default())
    specs = discover_notebooks(notebooks_dir)
    if not specs:
        raise InputError(
            f"no report notebooks (NN_name.ipynb) found in {notebooks_dir}; fix [project] "
            "notebooks in the config, or remove it to use the kit's notebooks"
        )
    selected = resolve_only(specs, only)
    report_cache = ReportCache(out_dir.parent / CACHE_DIR, reuse=cache)

    # Folders made for this run are removed again if it fails before publishing anything.
    created = [p for p in [out_dir.parent, *out_dir.parent.parents] if not p.exists()]
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create {out_dir.parent} ({exc.strerror}); choose another --out"
        ) from None
    lock = RunLock(out_dir)
    lock.acquire()
    try:
        return _run_locked(
            cfg,
            as_of,
            out_dir,
            run_name,
            demo,
            quarter,
            jobs,
            force,
            timeout,
            specs,
            started,
            progress,
            _Plan(selected, report_cache),
            fork=fork,
        )
    except BaseException:
        lock.release()
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    finally:
        lock.release()


def _run_locked(
    cfg,
    as_of,
    out_dir,
    run_name,
    demo,
    quarter,
    jobs,
    force,
    timeout,
    specs,
    started,
    progress,
    plan,
    fork=None,
) -> RunResult:
    check_destination(out_dir, force)  # again: another run may have published while we waited
    remove_stale_staging(out_dir.parent, progress)
    try:
        staging = Path(
            tempfile.mkdtemp(prefix=f".{run_name}.partial-{os.getpid()}-", dir=out_dir.parent)
        ).resolve()
    except OSError as exc:
        raise InputError(
            f"cannot write in {out_dir.parent} ({exc.strerror}); choose another --out"
        ) from None
    os.chmod(staging, 0o777 & ~UMASK)  # mkdtemp makes it private; a run is for sharing
    _quiet_kernel_logs()
    # Kernels for the notebooks that the configured tables allow boot while the data loads.
    pool = KernelPool(
        [s.name for s in specs if _configured_requirement(s, cfg) is None],
        staging,
        size=jobs,
        fork=fork,
    )
    renderer = None
    try:
        progress.step(f"loading data ({cfg.path})")
        artifacts = staging / "artifacts"
        given = (
            f"the end of quarter {quarter_label(as_of)} (--quarter)"
            if quarter
            else ("[project] as_of" if as_of else None)
        )
        dataset, as_of = _in_child(
            lambda: _prepare_data(cfg, as_of, artifacts, progress, given=given), progress
        )
        previous = find_previous_run(
            out_dir.parent, as_of, exclude=out_dir, project=cfg.project_name, demo=demo
        )
        t0 = time.perf_counter()
        if pool.share_data(artifacts / "data", meanwhile=_import_for_reports):
            progress.detail(f"report kernels hold the data ({time.perf_counter() - t0:.1f}s)")
        parameters = {
            "config": "" if demo else str(Path(cfg.path).resolve()) if cfg.path else "",
            "data_dir": "artifacts/data",
            "artifacts_dir": "artifacts",
            "as_of": as_of.isoformat(),
            "run_name": run_name,
            "quarter": quarter_label(as_of) if quarter else "",
            "previous_run": str(previous.resolve()) if previous else "",
        }
        durations = _past_durations(out_dir, previous)
        plan.inputs = dataset.report.inputs
        plan.config_digest = config_digest(None if demo else cfg.path)
        renderer = _Renderer(
            staging,
            {
                "project": cfg.project_name,
                "run": run_name,
                "quarter": quarter_label(as_of) if quarter else None,
                "as_of": as_of.isoformat(),
                "kit_version": __version__,
                "inputs": dataset.report.inputs,
                "reproduce": _reproduce_command(
                    cfg, demo, quarter_label(as_of) if quarter else None
                ),
            },
            progress,
            specs,
        )
        outcomes = _execute_all(
            specs,
            dataset,
            staging,
            parameters,
            jobs,
            progress,
            pool,
            durations,
            timeout,
            plan,
            on_done=renderer.submit,
        )
        pool.shutdown()  # every report has run: no warm kernel or zygote waits for rendering
        renderer.finish()
        manifest = _manifest(
            cfg=cfg,
            demo=demo,
            run_name=run_name,
            quarter=quarter_label(as_of) if quarter else None,
            as_of=as_of,
            started=started,
            parameters=parameters,
            dataset=dataset,
            outcomes=outcomes,
            staging=staging,
        )
        from icp_research.artifacts import write_json

        write_json(manifest, artifacts / "manifest.json")
        _render_index(staging, manifest, outcomes, renderer.charts())
        # Checked again at the last moment: never replace what appeared there during the run.
        check_destination(out_dir, force)
        _publish(staging, out_dir)
    except BaseException:
        pool.abort()
        if renderer is not None:
            renderer.abort()  # before the folder it writes in goes
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if write_reports_index(out_dir.parent) is None:
        progress.detail(
            f"{out_dir.parent / 'index.html'} is not icp-research's runs index; left as it is"
        )
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    done = len(outcomes) - len(failed) - len(skipped)
    words = f"{done} of {len(outcomes)} reports completed"
    if skipped:  # the same words as the dashboard's headline
        words += f", {len(skipped)} skipped"
    if failed:
        words += f", {len(failed)} failed"
    progress.step(
        f"done: {out_dir / 'index.html'} ({words}, {time.perf_counter() - progress._start:.1f}s)"
    )
    return RunResult(out_dir, manifest, outcomes)


def _prepare_data(cfg, as_of, artifacts: Path, progress, given: str | None = None):
    """Load and validate the exports, compute the facts every report reads, say what the data
    means, and write the run's data snapshot; returns the released dataset (counts and the
    validation report, no rows) and the as-of date. ``given`` says where a given ``as_of``
    came from; without one, the default is chosen and the progress says from what."""
    t0 = time.perf_counter()
    dataset = load_tables(cfg, as_of=as_of)
    from icp_research.data.schema import as_of_basis
    from icp_research.data.study import Study, earliest_date

    if as_of:
        basis = given or "given"
        latest, what = as_of_basis(dataset.tables)
        from icp_research.data.config import quarter_label, quarter_start

        begins = quarter_start(quarter_label(as_of))
        if latest is not None and latest < begins and as_of <= dt.date.today():
            # An export not refreshed for the quarter asked for (nothing in the data falls in
            # it): its months would count as time in which no customer churned and no deal
            # was made.
            stale = (
                f"the data ends {(as_of - latest).days:,} days before the as-of date "
                f"{as_of.isoformat()} (the last thing in it is {what.removeprefix('the ')}, "
                f"{latest.isoformat()}), so that time counts as time in which nothing happened "
                "(no churn, no deals)"
            )
            stale_fix = f"refresh the exports, or choose --quarter {quarter_label(latest)}"
            basis += f"; warning: {stale}: {stale_fix}"
            # On the dashboard too: its churn and win rates are diluted by that empty time.
            dataset.report.as_of_warning = f"{stale[:1].upper()}{stale[1:]}: {stale_fix}."
            # Also among the data's problems: the overview and data_problems.csv show it.
            from icp_research.data.loading import _Collector

            table = re.search(r"\((\w+)\.", what)
            table = table.group(1) if table and table.group(1) in cfg.tables else None
            if table is not None:
                _Collector(dataset.report, table, cfg.tables[table].display_path).warning(
                    stale, stale_fix
                )
        if as_of > dt.date.today():
            # A quarter that has not ended: customers' time up to its last day would count as
            # time without churn that nobody has seen yet.
            basis += (
                f"; warning: that date is in the future (the last thing in the data is "
                f"{what.removeprefix('the ')}, {latest.isoformat()}), so time up to it counts "
                "as time in which nothing happened; choose a quarter that has ended"
                if latest is not None
                else "; warning: that date is in the future; choose a quarter that has ended"
            )
    else:
        as_of, basis = as_of_basis(dataset.tables)
        if as_of is None:
            as_of, basis = dt.date.today(), "today: nothing in the data is dated"
        else:
            # Churn ends after everything else are taken as scheduled (a cancelled
            # subscription's paid term), not as churn seen: say how many, and what counts them.
            import pandas as pd

            from icp_research.data.schema import event_dates

            ends = event_dates(dataset.tables, "subscriptions", "end_date")
            # Ends still ahead of today are plans whatever the date; those between are not.
            later = ends[
                (ends >= pd.Timestamp(as_of) + pd.Timedelta(days=1))
                & (ends < pd.Timestamp(dt.date.today()) + pd.Timedelta(days=1))
            ]
            if len(later):
                basis += (
                    f"; {len(later):,} subscription ends after it (up to "
                    f"{pd.Timestamp(later.max()).date().isoformat()}) are taken as cancelled "
                    "subscriptions' paid terms running past the export, not churn seen; if they "
                    "are churns, set [project] as_of"
                )
    earliest, where = earliest_date(dataset.tables)
    if earliest is not None and earliest > as_of:
        raise InputError(
            f"as of {as_of.isoformat()} there is nothing to analyse: the earliest record is "
            f"{earliest.isoformat()} ({where}); choose a later --quarter or [project] as_of"
        )
    sizes = ", ".join(f"{k} {len(v):,}" for k, v in dataset.tables.items())
    progress.step(f"data loaded in {time.perf_counter() - t0:.1f}s: {sizes}")
    progress.step(f"as of {as_of.isoformat()}, {basis}")
    for problem in dataset.report.problems:
        label = "warning" if problem.level == "warning" else "note"
        progress.detail(f"{label}: {problem.line(verbose=True)}")
    loading_warnings = len(dataset.report.warnings)
    if loading_warnings:
        # Listed with -v only: say that they are there (mixed currencies, rows left out).
        progress.step(
            f"{loading_warnings:,} warning{'' if loading_warnings == 1 else 's'} from reading the "
            "data: in the data overview report and artifacts/data_problems.csv (-v or "
            "`icp-research validate` prints them)"
        )
    t0 = time.perf_counter()
    study = Study(dataset, as_of)
    study.precompute()  # every notebook reads these facts, none recomputes
    # What the data means (outcome-like columns, contract terms, outcomes that never vary,
    # implausible money): the same warnings as `icp-research validate`, as of this run.
    problems = study.trust.problems
    progress.step(
        f"account and deal facts as of {as_of.isoformat()} in {time.perf_counter() - t0:.1f}s"
    )
    for problem in problems:
        progress.step(f"warning: {problem.line()}")
    del study
    t0 = time.perf_counter()
    dataset.save(artifacts / "data")
    progress.detail(f"data snapshot written in {time.perf_counter() - t0:.1f}s")
    dataset.release()  # the kernels read the snapshot; the runner needs only the counts
    released = Dataset(
        dataset.config,
        dataset.tables,
        dataset.report,
        dataset.attributes,
        released_rows=dataset.released_rows,
    )
    return released, as_of


def _in_child(work, progress: Progress):
    """``work()`` in a forked child process, its result (or exception) handed back pickled.

    Loading a large export leaves the process that did it holding gigabytes it no longer uses
    (a 10M-deal run's runner kept 2.2 GB after letting its tables go: freed Python strings
    pin the allocator's arenas); in a child that exits, all of it goes back to the system.
    The work runs here where there is no fork, with ``ICP_RESEARCH_NO_FORK=1``, and when the
    progress lines do not go to a file descriptor (a notebook's output, a test's capture),
    which a child's lines would not reach.
    """
    try:
        progress.stream.fileno()
    except (AttributeError, OSError, ValueError):
        return work()
    if not hasattr(os, "fork") or os.environ.get("ICP_RESEARCH_NO_FORK") == "1":
        return work()
    import pickle

    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(read_end)
            progress._lock = threading.Lock()  # another thread may have held it at the fork
            try:
                payload = pickle.dumps(("ok", work()))
            except BaseException as error:  # handed to the parent, which raises it
                if not isinstance(error, (IcpError, KeyboardInterrupt)):
                    import traceback

                    error.add_note("".join(traceback.format_exception(error)).rstrip())
                try:
                    payload = pickle.dumps(("error", error))
                except Exception:
                    payload = pickle.dumps(
                        ("error", RuntimeError(f"{type(error).__name__}: {error}"))
                    )
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        except BaseException:
            code = 1
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
    except BaseException:  # Ctrl-C: the child got it too; do not leave it behind
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)
        raise
    if not payload:
        signalled = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        raise RuntimeError(
            "loading the data stopped without a result"
            + (
                f" (its process was killed by signal {signalled}; out of memory?)"
                if signalled
                else ""
            )
        )
    status, value = pickle.loads(payload)
    if status == "error":
        raise value
    return value


def _import_for_reports() -> None:
    """Import what running and rendering the reports needs (papermill, nbconvert, matplotlib:
    a second or more), while the run waits for the kernels' parent anyway. A failure is left
    to the real import, which reports it where it is needed."""
    with contextlib.suppress(Exception):
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import papermill  # noqa: F401

        import icp_research.reporting.render  # noqa: F401


def _configured_requirement(spec: NotebookSpec, cfg: Config) -> str | None:
    """Like :func:`missing_requirement`, from the config alone (before any data is read)."""
    for requirement in spec.requires:
        options = [r.strip() for r in requirement.split("|")]
        if not any(option in cfg.tables for option in options):
            return "no " + " or ".join(options)
    return None


def _start_order(todo: list[NotebookSpec], durations=None) -> list[NotebookSpec]:
    """The order notebooks start in: chains first, then the longest (by the last run, else by
    their typical cost), so that the cores stay busy and the longest reports do not overlap
    each other's largest steps by chance."""
    durations = durations or {}
    return sorted(
        todo, key=lambda s: (-_chain_length(s.name, todo), -durations.get(s.name, s.cost))
    )


def _chain_length(name: str, specs: list[NotebookSpec]) -> int:
    """How many notebooks wait, directly or not, on ``name``: those start first, so that a
    chain such as predictors -> blueprint -> health does not run last on an idle machine."""
    waiting = {name}
    while True:
        more = {s.name for s in specs if waiting & set(s.after)} - waiting
        if not more:
            return len(waiting) - 1
        waiting |= more


def _past_durations(*run_dirs) -> dict[str, float]:
    """Seconds each notebook took in the run being replaced or the previous run, if known."""
    for run_dir in run_dirs:
        if run_dir is None:
            continue
        try:
            manifest = json.loads((Path(run_dir) / "artifacts" / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        return {n["name"]: float(n.get("seconds") or 0) for n in manifest.get("notebooks", [])}
    return {}


@dataclass
class _Plan:
    """What to run (``selected``: --only with what it reads from, None: all) and the cache."""

    selected: set | None
    cache: ReportCache
    inputs: list = field(default_factory=list)
    config_digest: str = ""
    keys: dict = field(default_factory=dict)


def _cache_keys(specs, parameters: dict, plan: _Plan) -> dict[str, str]:
    """Every report's cache key, upstream first (a key includes the keys it reads from)."""
    keys: dict[str, str] = {}
    pending = list(specs)
    while pending:
        ready = [
            s
            for s in pending
            if all(a in keys or a not in {p.name for p in specs} for a in s.after)
        ]
        for spec in ready or pending[:1]:
            params = {k: v for k, v in parameters.items() if k in spec.parameters}
            upstream = [keys.get(a, "none") for a in spec.after]
            keys[spec.name] = plan.cache.key(
                spec, params, plan.inputs, plan.config_digest, upstream
            )
            pending.remove(spec)
    return keys


def _execute_all(
    specs,
    dataset,
    staging,
    parameters,
    jobs,
    progress,
    pool=None,
    durations=None,
    timeout=None,
    plan: _Plan | None = None,
    on_done=None,
):
    """Execute the notebooks (in parallel, respecting ``after``); one outcome per notebook.

    With a ``plan``, reports whose cache key is unchanged are copied from the cache instead, and
    reports outside ``--only`` are reused from it or skipped. ``on_done(spec, outcome)`` is
    called for each report as soon as it is executed or reused."""
    on_done = on_done or (lambda spec, outcome: None)
    import papermill  # noqa: F401  (imported here: it is slow to import)

    _register_engine()  # once, here, rather than by the first two reports at once

    kernel = ensure_kernel()
    plan = plan or _Plan(None, ReportCache(staging, enabled=False))
    plan.keys = _cache_keys(specs, parameters, plan)
    outcomes: dict[str, NotebookOutcome] = {}
    todo = []
    for spec in specs:
        reason = missing_requirement(spec, dataset)
        params = {k: v for k, v in parameters.items() if k in spec.parameters}
        cacheable = plan.cache.cacheable(spec, params)
        if reason:
            outcomes[spec.name] = NotebookOutcome(spec.name, spec.title, "skipped", reason=reason)
            progress.step(f"{spec.name}: skipped ({reason})")
        elif cacheable and plan.cache.restore(plan.keys[spec.name], spec, staging):
            outcomes[spec.name] = NotebookOutcome(
                spec.name, spec.title, "ok", ipynb=f"{spec.name}.ipynb", reused=True
            )
            progress.step(f"{spec.name}: unchanged, reused")
            on_done(spec, outcomes[spec.name])
        else:
            # Outside --only but with nothing to reuse: it runs all the same, so that the run
            # folder stays complete (a forced rerun never loses a report it had).
            if plan.selected is not None and spec.name not in plan.selected:
                progress.step(f"{spec.name}: not asked for with --only, but nothing to reuse: runs")
            todo.append(spec)
    jobs = max(1, jobs or min(len(todo) or 1, max(2, os.cpu_count() or 2)))
    names = {s.name for s in todo}
    pending = _start_order(todo, durations)
    running: dict[Future, NotebookSpec] = {}
    kernels = _RunningKernels()
    executor = ThreadPoolExecutor(max_workers=jobs)
    try:
        while pending or running:
            for spec in list(pending):
                if len(running) >= jobs:
                    break
                blockers = [a for a in spec.after if a in names and a not in outcomes]
                if blockers:
                    continue
                pending.remove(spec)
                progress.step(f"{spec.name}: running")
                job = executor.submit(
                    _execute_one, spec, staging, parameters, kernel, pool, kernels, timeout
                )
                running[job] = spec
            if not running:  # a dependency cycle or unknown names: run the rest anyway
                spec = pending.pop(0)
                job = executor.submit(
                    _execute_one, spec, staging, parameters, kernel, pool, kernels, timeout
                )
                running[job] = spec
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                spec = running.pop(future)
                outcome = future.result()
                outcomes[spec.name] = outcome
                if outcome.status == "ok":
                    progress.step(f"{spec.name}: ok ({outcome.seconds:.1f}s)")
                    params = {k: v for k, v in parameters.items() if k in spec.parameters}
                    if plan.cache.cacheable(spec, params):
                        plan.cache.store(plan.keys[spec.name], spec, staging)
                else:
                    progress.error(
                        f"{spec.name}: FAILED at cell {outcome.failed_cell}: {outcome.error} "
                        f"(executed notebook: {outcome.ipynb})"
                    )
                on_done(spec, outcome)
    except BaseException:
        # Ctrl-C (or any failure here): stop the running notebooks now rather than let them run
        # to the end; the caller removes the staging folder. What the kernel libraries log
        # from here on (a kernel stopped while it started) is a consequence of the stop.
        import logging

        for name in ("papermill", "traitlets", "nbclient", "jupyter_client"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        kernels.stop()
        if pool is not None:
            pool.abort()
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return [outcomes[s.name] for s in specs]


class _RunningKernels:
    """The kernels of the notebooks running now, so that Ctrl-C can stop them all at once."""

    def __init__(self):
        self.stopped = threading.Event()
        self._kernels: dict[str, object] = {}
        self._lock = threading.Lock()

    def add(self, name: str, km) -> None:
        with self._lock:
            self._kernels[name] = km
        if self.stopped.is_set():
            _kill_now(km)

    def remove(self, name: str) -> None:
        with self._lock:
            self._kernels.pop(name, None)

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            running = list(self._kernels.values())
        for km in running:
            _kill_now(km)


#: Seconds between saves of a running report's notebook. papermill saves it as each cell
#: starts and ends, markdown cells included: 92 saves of a notebook growing to 0.4 MB for the
#: blueprint, 440 in a run, on the runner's one core beside the kernels.
SAVE_EVERY = 5.0
ENGINE = "icp-research"


def _register_engine() -> str:
    """papermill's nbclient engine, but the executed notebook is saved at most every
    :data:`SAVE_EVERY` seconds while it runs, and always when it ends: a cell error, a dead
    kernel or a timeout included (papermill finishes the notebook in a ``finally``), so a
    failed report still leaves its notebook, executed up to the failure, to debug from."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    if ENGINE in papermill_engines._engines:
        return ENGINE

    class Manager(NotebookExecutionManager):
        ending = False

        def save(self, **kwargs):
            if kwargs.get("nb") is not None:
                self.nb = kwargs["nb"]
            if self.ending or (self.now() - self.last_save_time).total_seconds() >= SAVE_EVERY:
                super().save()

        def notebook_complete(self, **kwargs):
            self.ending = True
            super().notebook_complete(**kwargs)

    class Engine(NBClientEngine):
        @classmethod
        def execute_notebook(
            cls,
            nb,
            kernel_name,
            output_path=None,
            progress_bar=True,
            log_output=False,
            autosave_cell_every=30,
            **kwargs,
        ):
            # papermill's Engine.execute_notebook with the manager above.
            nb_man = Manager(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register(ENGINE, Engine)
    return ENGINE


def _execute_one(
    spec: NotebookSpec,
    staging: Path,
    parameters: dict,
    kernel: str,
    pool=None,
    kernels=None,
    timeout: float | None = None,
) -> NotebookOutcome:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    output = staging / f"{spec.name}.ipynb"
    params = {k: v for k, v in parameters.items() if k in spec.parameters}
    started = time.perf_counter()
    outcome = NotebookOutcome(spec.name, spec.title, "ok", ipynb=output.name)
    km = None
    try:
        # Always our own kernel, started in the run folder: papermill's cwd= would chdir the
        # whole process, which parallel notebooks cannot share.
        km = pool.take(spec.name) if pool is not None else start_kernel(staging)
        if kernels is not None:
            kernels.add(spec.name, km)
        pm.execute_notebook(
            str(spec.path),
            str(output),
            parameters=params,
            kernel_name=kernel,
            km=km,
            progress_bar=False,
            log_output=False,
            report_mode=False,
            engine_name=_register_engine(),
            request_save_on_cell_execute=True,
            execution_timeout=timeout,
        )
    except PapermillExecutionError as exc:
        outcome.status = "failed"
        outcome.failed_cell = _failed_cell_number(output, exc)
        first_line = str(exc.evalue).splitlines()[0] if exc.evalue else ""
        outcome.error = f"{exc.ename}: {first_line}".strip()
    except Exception as exc:  # a dead kernel, a timeout, a broken notebook file
        outcome.status = "failed"
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        outcome.error = f"{type(exc).__name__}: {first_line}"[:300]
        if type(exc).__name__ == "CellTimeoutError":
            outcome.error = (
                f"a step ran longer than the {timeout:g} s limit and was stopped "
                "(raise it with --timeout SECONDS)"
            )
        outcome.failed_cell = _mark_unfinished_cell(output) or _failed_cell_number(output, None)
    finally:
        if kernels is not None:
            kernels.remove(spec.name)
        if km is not None:
            if pool is not None and outcome.status == "ok":
                pool.retire(km)
            else:  # a failed report's kernel is stopped before the run goes on
                _shutdown(km)
    outcome.seconds = round(time.perf_counter() - started, 2)
    if not output.exists():
        outcome.ipynb = None
    return outcome


def _mark_unfinished_cell(output: Path) -> int | None:
    """Mark the cell that was running when the kernel died (or the run timed out) as failed.

    Papermill records when each cell started but, when the kernel dies, neither an error nor a
    failed status. Returns the cell's number as Jupyter would have shown it ("In [N]": one after
    the last numbered cell), or None when no cell was left unfinished.
    """
    import nbformat

    if not output.exists():
        return None
    nb = nbformat.read(output, as_version=4)
    started = [
        (index, cell)
        for index, cell in enumerate(nb.cells)
        if cell.get("cell_type") == "code"
        and cell.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    if not started:
        return None
    index, cell = started[-1]
    if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
        return None
    cell.metadata.papermill["exception"] = True
    cell.metadata.papermill["status"] = "failed"
    nb.metadata.setdefault("papermill", {})["exception"] = True
    nbformat.write(nb, output)
    counts = [
        c.get("execution_count") or 0 for c in nb.cells[:index] if c.get("cell_type") == "code"
    ]
    return cell.get("execution_count") or max(counts, default=0) + 1


def _failed_cell_number(output: Path, exc) -> int | None:
    """The failing cell as papermill numbers it ("In [N]"), the same number the report shows."""
    import nbformat

    from icp_research.reporting.render import notebook_failure

    if not output.exists():
        return getattr(exc, "exec_count", None)
    failure = notebook_failure(nbformat.read(output, as_version=4))
    return failure.cell if failure else getattr(exc, "exec_count", None)


class _Renderer:
    """Renders each report's HTML as soon as its notebook is done, on one thread beside the
    reports still running (near the end of a run a core is free), instead of all of them
    after the last report. A report's page says when it was generated: when it finished."""

    #: The dashboard's charts are drawn from these artifacts (icp_research.reporting.dashboard).
    CHART_INPUTS = ("icp_health", "icp")

    def __init__(self, staging: Path, page: dict, progress: Progress, specs=()):
        self.staging = staging
        self.page = page
        self.progress = progress
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="icp-render")
        self._jobs: list[Future] = []
        # The dashboard's charts are drawn as soon as the reports writing their inputs are done.
        writers = {
            registry.ANALYSES_BY_ARTIFACT[name].notebook
            for name in self.CHART_INPUTS
            if name in registry.ANALYSES_BY_ARTIFACT
        }
        self._chart_writers = writers & {s.name for s in specs}
        self._charts: Future | None = None

    def submit(self, spec: NotebookSpec, outcome: NotebookOutcome) -> None:
        self._chart_writers.discard(spec.name)
        try:
            self._submit_page(spec, outcome)
        finally:
            if not self._chart_writers and self._charts is None:
                from icp_research.reporting.dashboard import dashboard_charts

                self._charts = self._executor.submit(dashboard_charts, self.staging / "artifacts")

    def charts(self) -> list | None:
        """The dashboard's charts when drawn (None: draw them now)."""
        if self._charts is None:
            return None
        try:
            return self._charts.result()
        except Exception:
            return None

    def _submit_page(self, spec: NotebookSpec, outcome: NotebookOutcome) -> None:
        if outcome.status == "skipped" or not outcome.ipynb:
            return
        meta = {
            **self.page,
            "title": spec.title,
            "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "status": outcome.status,
            "failed_cell": outcome.failed_cell,
            "error": outcome.error,
        }
        self._jobs.append(self._executor.submit(self._render, spec, outcome, meta))

    def _render(self, spec: NotebookSpec, outcome: NotebookOutcome, meta: dict) -> None:
        from icp_research.reporting.render import render_notebook

        try:
            html_text = render_notebook(self.staging / outcome.ipynb, meta=meta)
        except Exception as exc:  # rendering must not lose the executed notebook
            outcome.status = "failed"
            outcome.error = f"rendering failed: {type(exc).__name__}: {exc}"[:300]
            self.progress.error(f"{spec.name}: could not render HTML: {exc}")
            return
        (self.staging / f"{spec.name}.html").write_text(html_text, encoding="utf-8")
        outcome.html = f"{spec.name}.html"
        if outcome.status == "ok":
            outcome.key_finding = key_finding(self.staging / "artifacts", spec.name)

    def finish(self) -> None:
        """Wait for every page (a failure to render one is in its outcome, not raised)."""
        try:
            for job in self._jobs:
                job.result()
        finally:
            self._executor.shutdown(wait=True)

    def abort(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _render_index(staging: Path, manifest: dict, outcomes, charts: list | None = None) -> None:
    from icp_research.reporting.render import render_run_index

    manifest["notebooks"] = [o.to_dict() for o in outcomes]
    from icp_research.artifacts import write_json

    write_json(manifest, staging / "artifacts" / "manifest.json")
    (staging / "index.html").write_text(
        render_run_index(manifest, artifacts_dir=staging / "artifacts", charts=charts),
        encoding="utf-8",
    )


def key_finding(artifacts: Path, notebook: str) -> str | None:
    """A report's first finding, for the run dashboard: from the result it saved
    (``artifacts/results/<analysis>.json``, see :meth:`Study.save_result`), never from its HTML.
    A report without findings is shown as its summary says it ("No findings."), followed by
    its first caveat (what was skipped and why), so that its line is never empty.
    """
    from icp_research.formatting import NO_FINDINGS

    registered = registry.ANALYSES_BY_NOTEBOOK.get(notebook)
    names = ([registered.name] if registered else []) + [notebook]
    for name in names:
        try:
            saved = json.loads((Path(artifacts) / "results" / f"{name}.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(saved, dict):
            return None
        findings = [f.strip() for f in saved.get("findings") or [] if isinstance(f, str)]
        if any(findings):
            return next(f for f in findings if f)[:400]
        caveats = [c.strip() for c in saved.get("caveats") or [] if isinstance(c, str)]
        return " ".join([NO_FINDINGS, *[c for c in caveats if c][:1]])[:400]
    return None


def _manifest(
    *, cfg, demo, run_name, quarter, as_of, started, parameters, dataset, outcomes, staging
) -> dict:
    import platform

    finished = dt.datetime.now(dt.timezone.utc)
    artifacts = sorted(
        str(p.relative_to(staging)).replace(os.sep, "/")
        for p in (staging / "artifacts").glob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    headline, statement = _headline(staging / "artifacts")
    command = _reproduce_command(cfg, demo, quarter)
    return {
        "kit_version": __version__,
        "run": run_name,
        "project": cfg.project_name,
        "quarter": quarter,
        "as_of": as_of.isoformat(),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "demo": demo,
        "config": str(cfg.path) if cfg.path and not demo else None,
        "parameters": {k: v for k, v in parameters.items() if k not in ("previous_run",)},
        "previous_run": Path(parameters["previous_run"]).name
        if parameters.get("previous_run")
        else None,
        "analysis": cfg.analysis,
        "inputs": dataset.report.inputs,
        "data_problems": {
            "errors": len(dataset.report.errors),
            "warnings": len(dataset.report.warnings),
        },
        "notebooks": [o.to_dict() for o in outcomes],
        "headline": headline,
        "icp_statement": statement,
        "icp_note": icp_note(staging / "artifacts") if statement else None,
        "as_of_warning": getattr(dataset.report, "as_of_warning", None),
        "artifacts": artifacts,
        "reproduce": command,
        "versions": _versions(platform.python_version()),
    }


def _reproduce_command(cfg, demo: bool, quarter: str | None) -> str:
    command = "icp-research run " + ("--demo" if demo else f"--config {cfg.path}")
    if quarter:
        command += f" --quarter {quarter}"
    return command


def icp_note(artifacts: Path) -> str | None:
    """What the predictor report recommends that the ICP does not use, in a sentence.

    The predictor report tests every quarter up to the run's date; the ICP is chosen on the
    quarters before its validation quarters, so a trait can be recommended on one page and
    absent on the other. Said beside the statement, so that a reader meets no contradiction."""
    try:
        icp = json.loads((artifacts / "icp.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    used = {
        condition.get("attribute")
        for kind in ("include", "exclude")
        for rule in (icp.get("rules") or {}).get(kind) or []
        for condition in rule.get("conditions") or []
    }
    chosen = ((icp.get("outcome") or {}).get("selected_on") or {}).get("end")
    from icp_research.analyses.health import worse_when_validated

    # Beside the statement: an ICP that did worse than the rest where nothing was chosen.
    worse = worse_when_validated(icp)
    notes, count = [], 0
    try:
        predictors = json.loads((artifacts / "icp_predictors.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        predictors = {}
    missing = [r for r in predictors.get("recommended") or [] if r.get("predictor") not in used]
    if missing:
        count += min(len(missing), 3)
        names = []
        for r in missing[:3]:
            name = str(r["predictor"]).replace("_", " ")
            favour = ", ".join(str(v) for v in (r.get("favour") or [])[:2])
            names.append(f"{name} ({favour})" if favour else name)
        notes.append(
            f"The predictor report, on every quarter up to {predictors.get('as_of')}, "
            f"recommends {' and '.join(names)}, which the ICP does not use"
        )
    # The churn and lost-deal reports' candidate exclude rules (whole period), which the ICP
    # finds again only on its discovery quarters: the ones it has no rule on, named.
    from icp_research.analyses.antipatterns import read_anti_patterns

    rules = read_anti_patterns(artifacts)
    if len(rules) and "status" in rules:
        rules = rules[(rules["status"] == "candidate") & ~rules["attribute"].isin(used)]
        if len(rules):
            count += len(rules)
            named = [f"accounts {w}" for w in rules["words"].head(3)]
            if len(rules) > 3:
                named.append(f"{len(rules) - 3} more")
            listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
            # The reports that propose them: the churn report, the lost-deal report, or both.
            reports = [
                name
                for source, name in (("churn", "churn"), ("deals", "lost-deal"))
                if (rules["source"] == source).any()
            ]
            by = (
                f"the {reports[0]} report proposes"
                if len(reports) == 1
                else "the churn and lost-deal reports propose"
            )
            notes.append(f"{by} excluding {listed}, which the ICP has no rule on")
    if not notes:
        return worse
    text = "; ".join(notes)
    one = count == 1
    return (f"{worse} " if worse else "") + (
        f"{text[0].upper()}{text[1:]}: on the data the ICP is chosen on (up to {chosen}) "
        f"{'it was' if one else 'they were'} not confirmed (not significant on those fewer "
        "quarters, or not again in its confirmation quarters: too little evidence, not evidence "
        f"against), so the ICP leaves {'it' if one else 'them'} out. The next quarterly run "
        f"tests {'it' if one else 'them'} again."
    )


def _headline(artifacts: Path) -> tuple[dict, str | None]:
    headline: dict = {}
    statement = None
    overview = artifacts / "overview.json"
    if overview.exists():
        headline.update(json.loads(overview.read_text(encoding="utf-8")).get("headline", {}))
    icp = artifacts / "icp.json"
    if icp.exists():
        data = json.loads(icp.read_text(encoding="utf-8"))
        statement = data.get("statement")
        headline.update(data.get("headline", {}))
    health = artifacts / "health.json"
    if health.exists():
        headline.update(json.loads(health.read_text(encoding="utf-8")).get("headline", {}))
    return headline, statement


def _versions(python: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": python}
    for package in (
        "pandas",
        "numpy",
        "scipy",
        "statsmodels",
        "seaborn",
        "matplotlib",
        "papermill",
        "nbconvert",
        "pyarrow",
    ):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def _publish(staging: Path, out_dir: Path) -> None:
    """Move the finished run into place; an existing run is replaced only at the last moment."""
    with _sigint_deferred():
        if out_dir.exists() or out_dir.is_symlink():
            old = Path(
                tempfile.mkdtemp(prefix=f".{out_dir.name}.old-{os.getpid()}-", dir=out_dir.parent)
            )
            old.rmdir()
            os.replace(out_dir, old)
            try:
                os.replace(staging, out_dir)
            except BaseException:
                os.replace(old, out_dir)
                raise
        else:
            os.replace(staging, out_dir)
            return
    if old.is_symlink():  # --out named a link: the link is replaced, its target left alone
        old.unlink()
    else:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _sigint_deferred():
    """Hold Ctrl-C for the two renames that swap runs, so no moment leaves neither in place.

    The swap takes microseconds; a Ctrl-C pressed during it lets the finished run complete.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def list_runs(reports_dir: Path) -> list[dict]:
    """Manifests of every run under ``reports_dir``, newest as-of first."""
    manifests = []
    for path in Path(reports_dir).glob("*/artifacts/manifest.json"):
        if path.parent.parent.name.startswith("."):
            continue
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        manifest["_dir"] = path.parent.parent.name
        manifests.append(manifest)
    manifests.sort(key=lambda m: (m.get("as_of") or "", m.get("finished_at") or ""), reverse=True)
    return manifests


def find_previous_run(
    reports_dir: Path,
    as_of: dt.date,
    exclude: Path,
    *,
    project: str | None = None,
    demo: bool | None = None,
) -> Path | None:
    """The latest earlier run (by as-of date) of the same reports folder, if any.

    When ``project`` (or ``demo``) is given, only runs of that project (demo or not) count, so
    a demo run never becomes the previous run of a company's own quarterly run.
    """
    if not Path(reports_dir).exists():
        return None
    for manifest in list_runs(reports_dir):
        run_dir = Path(reports_dir) / manifest["_dir"]
        if run_dir.resolve() == Path(exclude).resolve():
            continue
        if project is not None and manifest.get("project") != project:
            continue
        if demo is not None and bool(manifest.get("demo")) != demo:
            continue
        if manifest.get("as_of") and manifest["as_of"] < as_of.isoformat():
            return run_dir
    return None


def write_reports_index(reports_dir: Path) -> Path | None:
    """(Re)write ``reports/index.html`` over every run in the folder.

    Only where the file is absent or is the kit's own (its generator tag says icp-research): a
    site's ``index.html`` beside the runs is never replaced. Returns the path, or None when left.
    """
    from icp_research.artifacts import write_text
    from icp_research.reporting.render import render_reports_index

    index = Path(reports_dir) / "index.html"
    if index.exists() or index.is_symlink():
        try:
            with open(index, encoding="utf-8", errors="replace") as handle:
                head = handle.read(4096)
        except OSError:
            return None
        if index.is_symlink() or not OWN_INDEX.search(head):
            return None
    return write_text(render_reports_index(list_runs(reports_dir)), index)


#: How the kit recognises its own runs index (the generator tag its template writes).
OWN_INDEX = re.compile(r'<meta name="generator" content="icp-research[^"]*">')
