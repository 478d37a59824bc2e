"""Report kernels forked from a warm parent (a "zygote"), instead of each importing the stack.

Every report runs in its own kernel, and every kernel used to start a fresh interpreter that
imported pandas, numpy, scipy, statsmodels, matplotlib, seaborn and the kit itself: about two
CPU-seconds per report before any work. Here one parent process per run imports all that once;
each report kernel is a ``fork()`` of that parent which then runs ``ipykernel`` exactly as
``python -m ipykernel_launcher -f <connection file>`` would. Each report still gets a process of
its own (its own memory, variables, figures, random state); only the already imported modules
are shared, copy-on-write.

How it fits jupyter_client: :class:`ForkingProvisioner` replaces the local provisioner's
``Popen`` with a request to the zygote over a Unix socket (one connection per kernel). The
zygote forks, answers with the child's pid, relays signals sent on that connection to the
child's process group (interrupt, terminate, kill) and reports its exit status, so the kernel
manager's interrupt, kill, restart and "is it alive" keep working unchanged.

No orphans: the zygote exits when the run's process goes (it polls its parent and asks the
kernel to send it SIGTERM when the parent dies), and a forked kernel is killed when the zygote
goes (``PR_SET_PDEATHSIG`` on Linux; ipykernel's own parent poller as well) or when the
connection of its kernel manager closes.

Linux only (fork is unsafe with the macOS system frameworks, absent on Windows); elsewhere, or
with ``ICP_RESEARCH_NO_FORK=1``, kernels start as separate interpreters as before.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

#: Set to 1 (or true/yes) to start every kernel as a fresh interpreter (no zygote).
DISABLE_ENV = "ICP_RESEARCH_NO_FORK"

#: What the zygote imports before it forks anything: what report kernels import anyway.
#: Anything that fails to import is left to the kernel (which then fails as it would have).
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "scipy.stats",
    "matplotlib.pyplot",
    "seaborn",
    "statsmodels.api",
    "statsmodels.stats.multitest",
    "icp_research",
    "icp_research.reporting.display",
)
#: Packages of the kit whose modules are all preloaded (the reports import most of them).
PRELOAD_PACKAGES = (
    "icp_research.data",
    "icp_research.methods",
    "icp_research.analyses",
    "icp_research.scoring",
)
#: The command prefix the zygote stands in for (the kernelspec's, up to the launcher module).
LAUNCHER = "ipykernel_launcher"
START_TIMEOUT = 180.0


def fork_supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def fork_enabled(requested: bool | None = None) -> bool:
    """Whether report kernels are forked: ``requested`` (None: ask the environment)."""
    if not fork_supported():
        return False
    if requested is not None:
        return bool(requested)
    value = os.environ.get(DISABLE_ENV, "").strip().lower()
    return value in ("", "0", "false", "no", "off")


# ---------------------------------------------------------------------------------------------
# The kernelspec

KERNEL_NAME = "icp-research-python"

_kernel_lock = threading.Lock()
_kernel_dir: Path | None = None


#: Thread counts of the BLAS / OpenMP libraries numpy and scipy may use, set to 1 in report
#: kernels unless the environment sets them.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _remove_kernel_dir(base: Path, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(base, ignore_errors=True)


def ensure_kernel() -> str:
    """Register a kernelspec that runs this very Python, so notebooks import this package.

    The spec lives in a private temporary folder added to ``JUPYTER_PATH`` for this process
    only; nothing is installed in the user's Jupyter configuration.
    """
    global _kernel_dir
    with _kernel_lock:
        if _kernel_dir is None:
            base = Path(tempfile.mkdtemp(prefix="icp-research-kernel-"))
            # Removed when this process ends (not when a forked child does): a run leaves no
            # folder behind in the temporary directory.
            atexit.register(_remove_kernel_dir, base, os.getpid())
            spec_dir = base / "kernels" / KERNEL_NAME
            spec_dir.mkdir(parents=True)
            spec = {
                "argv": [
                    sys.executable,
                    "-Xfrozen_modules=off",
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                    # The kernel only listens on localhost; its TCP warning is noise here.
                    "--IPKernelApp.log_level=CRITICAL",
                ],
                "display_name": "Python (icp-research)",
                "language": "python",
                "env": {
                    # The kernel imports the very icp_research that runs it, installed or not.
                    "PYTHONPATH": os.pathsep.join(
                        [str(Path(__file__).resolve().parent.parent)]
                        + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
                    ),
                    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
                    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                    "PYTHONWARNINGS": "ignore",
                    # Reports run side by side, about one per core: a BLAS thread pool in each
                    # would fight over the same cores (small products then run a hundred times
                    # slower). Set these in the environment to choose otherwise.
                    **{name: os.environ.get(name, "1") for name in BLAS_THREADS},
                },
                "metadata": {"debugger": False},
            }
            (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
            os.environ["JUPYTER_PATH"] = os.pathsep.join(
                [str(base)] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
            )
            _kernel_dir = base
        return KERNEL_NAME


def kernel_spec() -> dict:
    """The kernelspec :func:`ensure_kernel` registered (registered now if need be)."""
    name = ensure_kernel()
    return json.loads((_kernel_dir / "kernels" / name / "kernel.json").read_text("utf-8"))


#: A zygote started before the run knew it needed one (see :func:`start_early_zygote`).
_early: list = []


def start_early_zygote(fork: bool | None = None) -> None:
    """Start the warm parent of the report kernels now, at the very start of
    ``icp-research run`` (the command's process imports nothing heavy before this), so that
    its imports overlap the run's own instead of following them: a third of a second of the
    run. The run takes it (:func:`take_early_zygote`); a run that stops before it does ends
    it with :func:`stop_early_zygote` (and the zygote ends with this process anyway)."""
    if _early or not fork_enabled(fork):
        return
    with contextlib.suppress(Exception):
        spec = kernel_spec()
        _early.append(Zygote(spec["argv"], spec.get("env", {}), Path.cwd()))


def take_early_zygote():
    """The zygote :func:`start_early_zygote` started, still alive, or None (taken once)."""
    while _early:
        zygote = _early.pop()
        if zygote.alive():
            return zygote
        zygote.stop()
    return None


def stop_early_zygote() -> None:
    while _early:
        _early.pop().stop()


# ---------------------------------------------------------------------------------------------
# The run's side


class Zygote:
    """The warm parent process of one run's kernels; :meth:`stop` ends it and its children.

    ``argv`` is the kernelspec's command (the part before ``-m ipykernel_launcher`` starts the
    zygote, with the same interpreter flags) and ``env`` the kernelspec's environment, so that
    the modules are imported under exactly the settings a kernel would import them under.
    """

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path):
        if LAUNCHER not in argv or argv[argv.index(LAUNCHER) - 1] != "-m":
            raise ValueError("the kernelspec does not run ipykernel_launcher")
        self.prefix = list(argv[: argv.index(LAUNCHER) + 1])
        self.stopped = False  # by the run: no kernel is to start any more, forked or not
        self._dir = tempfile.mkdtemp(prefix="icp-research-zygote-")
        self.path = os.path.join(self._dir, "zygote.sock")
        full_env = dict(os.environ)
        full_env.update(env)
        self.process = subprocess.Popen(
            [
                *self.prefix[:-2],
                "-m",
                __name__,
                self.path,
                str(os.getpid()),
            ],
            cwd=str(cwd),
            env=full_env,
            stdin=subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the terminal reaches the run, which stops kernels.
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def spawn(self, cmd: list[str], env: dict[str, str], cwd: str) -> ForkedProcess:
        """Fork a kernel running ``cmd`` (the kernelspec's command, formatted)."""
        if list(cmd[: len(self.prefix)]) != self.prefix:
            raise ValueError("not a command this zygote stands in for")
        request = {"args": list(cmd[len(self.prefix) :]), "env": dict(env), "cwd": str(cwd)}
        deadline = time.monotonic() + START_TIMEOUT
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            while True:  # the socket appears as soon as the zygote starts (before imports)
                try:
                    sock.connect(self.path)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    if not self.alive() or time.monotonic() > deadline:
                        raise RuntimeError("the zygote is not running") from None
                    time.sleep(0.02)
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not self.alive():
                    raise RuntimeError("the zygote did not fork a kernel")
                if _readable(sock, min(left, 0.5)):
                    chunk = sock.recv(64)
                    if not chunk:
                        raise RuntimeError("the zygote closed the connection")
                    reply += chunk
            word, _, value = reply.decode().strip().partition(" ")
            if word != "pid":
                raise RuntimeError(f"the zygote answered {reply!r}")
            return ForkedProcess(sock, int(value))
        except BaseException:
            sock.close()
            raise

    def share(self, directory: Path, timeout: float = 3600.0) -> bool:
        """Have the zygote read the data snapshot in ``directory`` (kernels forked afterwards
        share it: :func:`icp_research.data.loading.share_snapshot`); True when it did."""
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            while True:
                try:
                    sock.connect(self.path)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    if not self.alive() or time.monotonic() > deadline:
                        return False
                    time.sleep(0.02)
            sock.sendall(json.dumps({"load": str(Path(directory).resolve())}).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                if not self.alive() or time.monotonic() > deadline:
                    return False
                if _readable(sock, 0.5):
                    chunk = sock.recv(256)
                    if not chunk:
                        return False
                    reply += chunk
            return reply.startswith(b"loaded")

    def stop(self) -> None:
        """End the zygote (it kills the kernels it forked that still run) and wait for it."""
        self.stopped = True
        with contextlib.suppress(OSError):
            self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)


class ForkedProcess:
    """A forked kernel as the kernel manager sees it: the part of ``Popen`` it uses.

    Signals go through the zygote, which alone can tell whether the pid is still its child (so
    a reused pid is never signalled); the exit status comes back on the same connection.
    """

    stdin = stdout = stderr = None

    def __init__(self, sock: socket.socket, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._sock = sock
        self._buffer = b""
        self._lock = threading.Lock()

    def _receive(self, timeout: float) -> None:
        if self.returncode is not None:
            return
        try:
            chunk = self._sock.recv(256) if _readable(self._sock, timeout) else None
        except OSError:
            chunk = b""
        if chunk is None:
            return
        if not chunk:  # the zygote is gone, and its kernels with it
            self.returncode = -signal.SIGKILL
            self._sock.close()
            return
        self._buffer += chunk
        for line in self._buffer.split(b"\n")[:-1]:
            word, _, value = line.decode().partition(" ")
            if word == "exit":
                self.returncode = int(value)
                self._sock.close()
                return
        self._buffer = self._buffer[self._buffer.rfind(b"\n") + 1 :]

    def poll(self) -> int | None:
        with self._lock:
            self._receive(0)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._receive(0.05)
                if self.returncode is not None:
                    return self.returncode
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout)

    def send_signal(self, signum: int) -> None:
        with self._lock:
            self._receive(0)
            if self.returncode is not None:
                return
            with contextlib.suppress(OSError):
                self._sock.sendall(f"signal {int(signum)}\n".encode())

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` has data (or was closed) within ``timeout`` seconds. ``poll``, unlike
    ``select``, takes any descriptor number: the run may be one part of a process holding more
    than 1,024 open files (a notebook server, a test session)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(max(timeout, 0.0) * 1000))


def _report_client_class():
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.utils import ensure_async

    class ReportClient(AsyncKernelClient):
        """The client papermill runs a report through: jupyter_client's, except that once
        the kernel has answered, what its IOPub channel already holds is drained without
        waiting 0.2 s for more (jupyter_client's flush always waits that long: 0.2 s a
        report, in series). Messages that arrive later are the start-up's; papermill only
        reads the messages of the requests it sends."""

        async def wait_for_ready(self, timeout: float | None = None) -> None:
            await _wait_for_ready(self, timeout)

        _async_wait_for_ready = wait_for_ready

    async def _wait_for_ready(client, timeout):
        import queue as queue_module

        # jupyter_client's loop (kernel_info until a reply, with IOPub seen to be connected).
        deadline = time.time() + (float("inf") if timeout is None else timeout)
        while True:
            client.kernel_info()
            try:
                msg = await ensure_async(client.shell_channel.get_msg(timeout=1))
            except queue_module.Empty:
                pass
            else:
                if msg["msg_type"] == "kernel_info_reply":
                    try:
                        await ensure_async(client.iopub_channel.get_msg(timeout=0.2))
                    except queue_module.Empty:
                        pass
                    else:
                        client._handle_kernel_info_reply(msg)
                        break
            if not await client._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.time() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")
        while True:  # what is there already
            try:
                await ensure_async(client.iopub_channel.get_msg(timeout=0.005))
            except queue_module.Empty:
                break

    return ReportClient


def __getattr__(name: str):
    # ReportClient is built on first use: importing jupyter_client here would slow every
    # import of this module (the zygote's included) for the runner's sake.
    if name == "ReportClient":
        cls = _report_client_class()
        globals()["ReportClient"] = cls
        return cls
    raise AttributeError(name)


def forking_provisioner(km, zygote: Zygote):
    """A provisioner for ``km`` whose kernels the ``zygote`` forks (set before start_kernel)."""
    import uuid

    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    class ForkingProvisioner(LocalProvisioner):
        """The local provisioner, with ``fork()`` from the zygote in place of ``Popen``; if the
        zygote cannot serve, the kernel starts as a fresh interpreter all the same."""

        async def launch_kernel(self, cmd, **kwargs):
            try:
                env = kwargs.get("env") or dict(os.environ)
                cwd = kwargs.get("cwd") or os.getcwd()
                process = zygote.spawn(cmd, env, str(cwd))
            except Exception:
                if zygote.stopped:  # the run is over (or stopping): its folder may be gone
                    raise RuntimeError("the run stopped") from None
                return await super().launch_kernel(cmd, **kwargs)
            self.process = process
            self.pid = process.pid
            self.pgid = None  # signals go through the zygote, to the kernel's process group
            self.cwd = kwargs.get("cwd", Path.cwd())
            return self.connection_info

    km.kernel_id = km.kernel_id or str(uuid.uuid4())
    return ForkingProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)


# ---------------------------------------------------------------------------------------------
# The zygote's side (``python -m icp_research.pipeline.kernels SOCKET PARENT_PID``)


def _preload() -> None:
    import importlib
    import pkgutil

    names = list(PRELOAD)
    for package in PRELOAD_PACKAGES:
        try:
            module = importlib.import_module(package)
        except Exception:
            continue
        names += [
            info.name
            for info in pkgutil.walk_packages(module.__path__, package + ".")
            if not info.name.rsplit(".", 1)[-1].startswith("_")
        ]
    for name in names:
        # One that fails is imported again by the kernel, and fails there as it would have.
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def _set_parent_death_signal(signum: int) -> None:
    """Have the kernel send ``signum`` to this process when its parent dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signum), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _serve(path: str, parent: int) -> dict | None:
    """Serve fork requests until the run's process goes; returns the request in a child."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_parent_death_signal(signal.SIGTERM)  # SIGTERM ends it at once while it imports
    if os.getppid() != parent:
        return None
    _preload()
    import gc

    gc.collect()
    gc.freeze()  # imported objects stay put: fewer pages copied into each kernel
    stopping = []  # from here on, SIGTERM stops the loop, which then stops the kernels
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    buffers: dict[socket.socket, bytes] = {}
    child_of: dict[socket.socket, int] = {}  # connection -> its kernel's pid
    conn_of: dict[int, socket.socket] = {}  # running kernel's pid -> its connection

    def close(conn: socket.socket) -> None:
        buffers.pop(conn, None)
        pid = child_of.pop(conn, None)
        if pid in conn_of:  # its manager is gone: so is the kernel
            _signal_group(pid, signal.SIGKILL)
        conn.close()

    try:
        while not stopping and os.getppid() == parent:
            while True:  # reap and report
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                conn = conn_of.pop(pid, None)
                if conn is not None:
                    with contextlib.suppress(OSError):
                        conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                    close(conn)
            try:
                ready, _, _ = select.select([listener, wake_r, *buffers], [], [], 0.5)
            except InterruptedError:
                continue
            for item in ready:
                if item is wake_r:
                    with contextlib.suppress(OSError):
                        while os.read(wake_r, 512):
                            pass
                    continue
                if item is listener:
                    conn, _ = listener.accept()
                    buffers[conn] = b""
                    continue
                try:
                    chunk = item.recv(1 << 16)
                except OSError:
                    chunk = b""
                if not chunk:
                    close(item)
                    continue
                buffers[item] += chunk
                *lines, buffers[item] = buffers[item].split(b"\n")
                for line in lines:
                    if item in child_of:  # "signal N" for the kernel of this connection
                        word, _, value = line.decode(errors="replace").partition(" ")
                        pid = child_of[item]
                        if word == "signal" and value.strip().isdigit() and pid in conn_of:
                            _signal_group(pid, int(value))
                        continue
                    try:
                        request = json.loads(line)
                        if "load" in request:
                            _share(item, str(request["load"]))
                            close(item)
                            break
                        if not isinstance(request.get("args"), list):
                            raise ValueError("no args")
                    except (ValueError, AttributeError):
                        close(item)
                        break
                    sys.stdout.flush()
                    sys.stderr.flush()
                    pid = os.fork()
                    if pid == 0:
                        _become_kernel()
                        signal.set_wakeup_fd(-1)
                        for fd in (wake_r, wake_w):
                            os.close(fd)
                        listener.close()
                        for other in list(buffers):
                            other.close()
                        return request
                    child_of[item] = pid
                    conn_of[pid] = item
                    with contextlib.suppress(OSError):
                        item.sendall(f"pid {pid}\n".encode())
    except BaseException:
        if os.getpid() != _ZYGOTE_PID:
            raise
    # The run is over (or gone): no kernel of it outlives it.
    for pid in list(conn_of):
        _signal_group(pid, signal.SIGKILL)
    for pid in list(conn_of):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return None


def _share(conn: socket.socket, directory: str) -> None:
    """Read the run's data snapshot into this process, for the kernels forked after it; answer
    ``loaded N`` (frames) or ``failed ...`` (the kernels then read it themselves)."""
    import gc

    try:
        from icp_research.data.loading import share_snapshot

        reply = f"loaded {share_snapshot(directory)}"
        gc.collect()
        gc.freeze()  # the frames' objects stay put too: fewer pages copied into each kernel
    except Exception as exc:  # noqa: BLE001 - any failure only means no sharing
        reply = f"failed {type(exc).__name__}"
    with contextlib.suppress(OSError):
        conn.sendall(reply.encode() + b"\n")


def _signal_group(pid: int, signum: int) -> None:
    """Signal a kernel's process group (it leads its own session), else the kernel alone."""
    try:
        os.killpg(pid, signum)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


def _become_kernel() -> None:
    """First steps of a forked kernel: its own session, death with the zygote, and the signal
    dispositions of a fresh interpreter."""
    os.setsid()
    _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != _ZYGOTE_PID:  # the zygote died before the line above
        os._exit(1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


class _MalformedMessageFilter:
    """Drops the kernel's log record of a message on its sockets without the protocol's
    delimiter (pyzmq's "Uncaught exception in ZMQStream callback ... ValueError: DELIM not in
    msg_list"): the kernel drops that message and goes on, and the traceback, printed into the
    run's output, reads like the run's own failure. Every other record is kept."""

    def filter(self, record) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, ValueError) and "DELIM not in msg_list" in str(error))


def _quiet_malformed_messages() -> None:
    import logging

    logger = logging.getLogger("tornado.general")
    if not any(isinstance(f, _MalformedMessageFilter) for f in logger.filters):
        logger.addFilter(_MalformedMessageFilter())


def _run_kernel(request: dict, startup_cwd: str) -> None:
    """Run ipykernel as ``python -m ipykernel_launcher ARGS`` would, in this forked process."""
    import runpy

    cwd = request["cwd"]
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ["JPY_PARENT_PID"] = str(_ZYGOTE_PID)  # ipykernel's own parent poller
    if sys.path and sys.path[0] in ("", startup_cwd):
        sys.path[0] = os.getcwd()
    if "numpy" in sys.modules:  # fresh global random state, as a fresh interpreter has
        sys.modules["numpy"].random.seed()
    sys.argv = [sys.argv[0], *request["args"]]
    _quiet_malformed_messages()
    runpy.run_module(LAUNCHER, run_name="__main__", alter_sys=True)


_ZYGOTE_PID = os.getpid()


def main(argv: list[str]) -> int:
    path, parent = argv[0], int(argv[1])
    startup_cwd = os.getcwd()
    request = _serve(path, parent)
    if request is None:  # the socket and its private folder go with it, even after a kill -9
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))
        return 0
    _run_kernel(request, startup_cwd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
