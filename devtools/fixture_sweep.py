"""Run the whole report suite on every fixture export, plain and with ``--quarter``.

The fixtures in ``tests/fixtures/exports/`` are shaped like real exports (contradicting churn
sources, order lines, constant outcomes, status columns, odd encodings). Every report must end
ok or skipped with its reason on each of them, never failed: a failed report means the kit met
a shape it does not handle. No rendered page may show a figure that does not exist ("nan",
"inf", "infx", empty brackets). Exits 1 when a run broke either rule, and prints one line per
run.

    python -m devtools.fixture_sweep [--out DIR] [--only NAME ...] [--jobs N] [--one-pass]

``--one-pass`` runs each fixture once, the plain run for every other fixture (in name order)
and the ``--quarter`` run for the rest: both code paths on every change, in half the time (what
CI runs; the default runs both on every fixture).
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "exports"


def fixture_configs(only: list[str] | None = None) -> list[Path]:
    """Every fixture export's icp.toml, by folder name."""
    configs = sorted(FIXTURES.glob("*/icp.toml"))
    return [c for c in configs if not only or c.parent.name in only]


def previous_quarter(as_of: str) -> str:
    """The quarter that ended before the one holding ``as_of`` ('2025-11-25' -> '2025Q3')."""
    day = dt.date.fromisoformat(as_of)
    first = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1) - dt.timedelta(days=1)
    return f"{first.year}Q{(first.month - 1) // 3 + 1}"


def run(config: Path, out: Path, quarter: str | None = None) -> dict:
    """One suite run; returns its manifest (or the error line when it exited 2)."""
    command = [sys.executable, "-m", "icp_research.cli", "run", "--config", str(config)]
    command += ["--out", str(out), "--force", "--quiet"]
    if quarter:
        command += ["--quarter", quarter]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    manifest = out / "artifacts" / "manifest.json"
    if done.returncode == 2 or not manifest.exists():
        return {"exit": done.returncode, "error": done.stderr.strip()[-300:], "seconds": seconds}
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data.update(exit=done.returncode, seconds=seconds)
    return data


#: Text a reader must never meet in a report: a number that did not exist ("nan", "inf",
#: "infx as fast", "CI nan–nan", an interval with an unknown end "(–––", "(––not reached"), or an empty pair of
#: brackets where figures were meant to go.
_BROKEN_TEXT = re.compile(
    r"(?i)(?<![\w.-])(?:nan|-?inf)(?:x|%)?(?![\w.-])|nan[–-]nan|(?<=\s)\(\s*\)|\(––"
)


def broken_text(run_dir: Path) -> list[str]:
    """Each rendered page of a run (reports, dashboard, one-pager) whose visible text holds
    broken figures, with the words around the first one."""
    found = []
    pages = sorted(run_dir.glob("*.html")) + sorted(run_dir.glob("artifacts/*.html"))
    for page in pages:
        text = page.read_text(encoding="utf-8", errors="replace")
        text = re.sub(r"(?s)<(style|script)\b.*?</\1>", " ", text)
        text = re.sub(r"data:[\w/+.-]+;base64,[^\"')\s]+", " ", text)
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        match = _BROKEN_TEXT.search(text)
        if match:
            around = " ".join(text[max(0, match.start() - 60) : match.end() + 30].split())
            found.append(f"{page.name}: ...{around}...")
    return found


def default_as_of(config: Path) -> str | None:
    """The as-of date a plain run of ``config`` takes ([project] as_of, else the last thing
    that happened in the data), without running it; None when the data cannot be read."""
    from icp_research.data.config import load_config
    from icp_research.data.loading import load_tables
    from icp_research.data.schema import as_of_basis

    cfg = load_config(config)
    if cfg.as_of:
        return str(cfg.as_of)[:10]
    try:
        day, _ = as_of_basis(load_tables(cfg).tables)
    except Exception:  # a fixture that does not load fails its plain run instead
        return None
    return day.isoformat()[:10] if day is not None else None


def sweep_fixture(config: Path, out: Path, passes: str = "both") -> list[tuple[str, dict]]:
    """The fixture's plain run, then (when it has an as-of date) its previous quarter's;
    ``passes`` "plain" or "quarter" runs only one of them."""
    name = config.parent.name
    runs = []
    as_of = None
    if passes in ("both", "plain"):
        plain = run(config, out / name / "plain")
        runs.append(("plain", plain))
        as_of = plain.get("as_of")
    else:
        as_of = default_as_of(config)
        if as_of is None:  # nothing to take a quarter before: the plain run, to say why
            return [("plain", run(config, out / name / "plain"))]
    if as_of and passes in ("both", "quarter"):
        quarter = previous_quarter(as_of)
        runs.append((quarter, run(config, out / name / quarter, quarter)))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="where the runs go (default: a temporary folder)")
    parser.add_argument("--only", nargs="*", help="fixture folder names")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="fixtures swept at once (default 1: a suite run keeps two cores busy on its own)",
    )
    parser.add_argument(
        "--one-pass",
        action="store_true",
        help="each fixture once: plain for every other fixture, --quarter for the rest",
    )
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fixture-sweep-"))
    failures = 0
    configs = fixture_configs(args.only)
    if not configs:
        print("fixture sweep: no fixture exports found", file=sys.stderr)
        return 1
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        # Each run is a separate process; the results are printed in the fixtures' order.
        passes = [
            ("plain" if i % 2 == 0 else "quarter") if args.one_pass else "both"
            for i in range(len(configs))
        ]
        jobs = list(zip(configs, passes, strict=True))
        swept = pool.map(lambda job: sweep_fixture(job[0], out, job[1]), jobs)
        for config, runs in zip(configs, swept, strict=True):
            name = config.parent.name
            for label, result in runs:
                if "notebooks" not in result:
                    failures += 1
                    print(f"FAIL {name} {label}: exit {result['exit']}: {result['error']}")
                    continue
                status = {n["name"]: n["status"] for n in result["notebooks"]}
                failed = [n for n, s in status.items() if s == "failed"]
                failures += bool(failed) or result["exit"] not in (0,)
                counts = ", ".join(
                    f"{sum(s == k for s in status.values())} {k}"
                    for k in ("ok", "skipped", "failed")
                )
                broken = broken_text(out / name / label)
                failures += bool(broken) and not failed
                mark = "FAIL" if failed or broken else "ok  "
                print(
                    f"{mark} {name} {label}: {counts} ({result['seconds']:.0f} s)"
                    + (f"; failed: {', '.join(failed)}" if failed else "")
                    + "".join(f"\n     broken figures in {b}" for b in broken),
                    flush=True,
                )
    print(f"{len(configs)} fixtures, {failures} failed runs; reports in {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
