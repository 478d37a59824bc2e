"""The ``icp-research`` command: a thin layer over the package's functions.

Exit codes: 0 ok, 1 an analysis failed, 2 bad input or usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import copy
import errno
import sys
import textwrap
import warnings
from pathlib import Path

from icp_research.errors import IcpError, InputError
from icp_research.version import __version__

DESCRIPTION = """\
Find your Ideal Customer Profile from your own CRM, billing and usage exports.

Start with the demo:            icp-research run --demo
Then your own data:             icp-research init my-icp && edit my-icp/icp.toml
                                icp-research validate --config my-icp/icp.toml
                                icp-research run --config my-icp/icp.toml --quarter 2026Q3
Score leads with the result:    icp-research score --icp reports/2026Q3/artifacts/icp.json \\
                                    --input leads.csv --output scored.csv
"""


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    group.add_argument(
        "-v", "--verbose", action="store_true", help="print warnings and details too"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icp-research",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"icp-research {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run every report notebook and render the HTML reports",
        description="Load the exports once, run every report notebook (papermill, in parallel), "
        "render stakeholder HTML and write reports/<run>/ atomically.",
    )
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="ICP_TOML", help="your project's icp.toml")
    source.add_argument("--demo", action="store_true", help="use the bundled demo dataset")
    run.add_argument(
        "--quarter",
        metavar="YYYYQn",
        help="analyse as of the quarter's last day (e.g. 2026Q3); also names the run folder",
    )
    run.add_argument(
        "--out",
        metavar="DIR",
        help="run folder (default: reports/<quarter> with --quarter, else "
        "reports/<the config's as_of> or reports/latest; reports/demo for --demo, "
        "reports/demo-<quarter> with --quarter)",
    )
    run.add_argument(
        "--jobs", type=int, metavar="N", help="notebooks run in parallel (default: CPU count)"
    )
    run.add_argument("--force", action="store_true", help="replace an existing run folder")
    run.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=None,
        help="longest one step of a report may run before that report is stopped (default 1800)",
    )
    run.add_argument(
        "--only",
        metavar="LIST",
        help="run only these reports and what they read from, e.g. --only 04,05 or "
        "--only blueprint (the others are reused when unchanged)",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="rerun every report, even those whose inputs, parameters and code did not change",
    )
    run.add_argument("--notebooks", metavar="DIR", help=argparse.SUPPRESS)
    _add_output_flags(run)

    val = sub.add_parser(
        "validate",
        help="check your exports against the config; list every problem",
        description="Read every export named in the config and report each problem with file, "
        "column, rows and the fix. Exit 2 when there are errors.",
    )
    val.add_argument("--config", metavar="ICP_TOML", required=True)
    _add_output_flags(val)
    val.add_argument(
        "--rows",
        type=int,
        default=VERBOSE_ROWS,
        metavar="N",
        help=f"with --verbose, list up to N affected rows per problem (default {VERBOSE_ROWS}; "
        "up to 1,000 are kept)",
    )

    score = sub.add_parser(
        "score",
        help="score leads or accounts with a run's ICP (fit score 0-100, tier, reasons)",
        description="Apply a run's artifacts/icp.json to a CSV / Parquet / Excel file of leads. "
        "Every row comes back with fit_score, tier, win_probability (when icp.json carries a "
        "calibration), reasons and the rules it hits.",
    )
    score.add_argument(
        "--icp", required=True, metavar="ICP_JSON", help="a run's artifacts/icp.json"
    )
    score.add_argument("--input", required=True, metavar="FILE", help="leads to score")
    score.add_argument(
        "--config",
        metavar="ICP_TOML",
        help="map the leads file's columns with this config's [tables.accounts] mapping",
    )
    score.add_argument(
        "--output",
        required=True,
        metavar="FILE",
        help="scored file to write (.csv, .xlsx or .parquet)",
    )
    score.add_argument(
        "--sheet",
        metavar="NAME",
        help="the Excel sheet with the leads (default: the config's accounts sheet, else the "
        "first)",
    )
    score.add_argument("--force", action="store_true", help="replace an existing output file")
    score.add_argument(
        "--rules-only",
        action="store_true",
        help="mark leads by the ICP's rules only (in_icp, rules_hit), without a fit score: for "
        "an icp.json whose data was too thin to fit one",
    )
    _add_output_flags(score)

    init = sub.add_parser(
        "init",
        help="write a commented starter icp.toml",
        description="Write a commented starter icp.toml (optionally from a CRM preset) into DIR.",
    )
    init.add_argument("directory", nargs="?", default=".", metavar="DIR")
    init.add_argument(
        "--preset",
        choices=["generic", "salesforce", "salesforce-api", "hubspot", "odoo"],
        default="generic",
        help="column names and stage values of a CRM's standard export",
    )
    init.add_argument(
        "--with-demo-data",
        action="store_true",
        help="also write the demo exports, so the config runs as it is",
    )
    init.add_argument(
        "--notebooks",
        action="store_true",
        help="also copy the report notebooks into DIR/notebooks (the config then runs those)",
    )
    init.add_argument("--force", action="store_true", help="replace existing files")
    _add_output_flags(init)
    return parser


def _skip_slow_optional_imports() -> None:
    """Leave out an optional module that costs this command a second and serves it nothing.

    nbformat (papermill, nbconvert) imports jsonschema, which imports ``rfc3987_syntax`` when
    it is installed (Jupyter's ``jsonschema[format-nongpl]`` brings it): its grammar is built
    at import, about 0.9 s here, only to check the "iri" string format, which no notebook
    schema uses (python-jsonschema/jsonschema#1392). Marking it absent makes jsonschema skip
    that one format. Done only in this command's own process, never in a user's session, and
    only when jsonschema is not imported yet.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)


def main(argv: list[str] | None = None) -> int:
    _skip_slow_optional_imports()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    verbose = getattr(args, "verbose", False)
    try:
        with warnings.catch_warnings():
            # Library warnings (pandas, numpy, statsmodels) are for developers: the terminal shows
            # the kit's own lines; --verbose lets them through for debugging.
            if not verbose:
                warnings.simplefilter("ignore")
            return {"run": _run, "validate": _validate, "score": _score, "init": _init}[
                args.command
            ](args)
    except InputError as exc:
        report = getattr(exc, "report", None)
        if verbose and report is not None:
            _print_problems(report, verbose=True)
        else:
            for line in exc.problems:
                print(f"error: {line}", file=sys.stderr)
        return 2
    except IcpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: nothing was written; earlier runs are untouched", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            if verbose:
                raise
            print(
                f"error: unexpected {type(exc).__name__}: {exc} (rerun with --verbose for details)",
                file=sys.stderr,
            )
            return 1
        what = {
            errno.ENOSPC: "the disk is full",
            errno.EDQUOT: "the disk quota is used up",
            errno.EROFS: "the folder is on a read-only disk",
            errno.EACCES: "permission denied",
        }[exc.errno]
        where = f" writing {exc.filename}" if exc.filename else ""
        print(
            f"error: {what}{where}; nothing was published (earlier runs are untouched): free "
            "some space or choose another --out / --output, then run again",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # pragma: no cover - the last line of defence
        if verbose:
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {exc} (rerun with --verbose for details)",
            file=sys.stderr,
        )
        return 1


def _run(args) -> int:
    import signal
    import threading

    from icp_research.pipeline import kernels

    # The reports' warm parent starts importing now, beside this process's own imports.
    kernels.start_early_zygote()
    try:
        return _run_suite(args, signal, threading)
    finally:
        kernels.stop_early_zygote()  # when the run stopped before it took it


def _run_suite(args, signal, threading) -> int:
    from icp_research.pipeline.runner import Progress, run_suite

    previous = None
    if threading.current_thread() is threading.main_thread():
        # A scheduler stopping the job (cron, CI timeouts) sends SIGTERM: clean up as for Ctrl-C.
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        result = run_suite(
            config=args.config,
            demo=args.demo,
            quarter=args.quarter,
            out=args.out,
            jobs=args.jobs,
            force=args.force,
            notebooks_dir=args.notebooks,
            only=args.only,
            cache=not args.no_cache,
            **({"timeout": args.timeout} if args.timeout is not None else {}),
            progress=Progress(quiet=args.quiet, verbose=args.verbose),
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if not args.quiet:
        print(result.out_dir / "index.html")
    return result.exit_code


#: Affected rows ``--verbose`` lists per problem, each with its value (``validate --rows``).
VERBOSE_ROWS = 20


def _print_problems(
    report, *, verbose: bool = False, quiet: bool = False, rows: int = VERBOSE_ROWS
) -> None:
    """Errors on stderr, one line each; warnings (and with ``verbose`` notes) on stdout.

    ``verbose`` lists up to ``rows`` affected rows per problem (of the 1,000 kept) and, below a
    problem with bad cells, the value found in each of them.
    """
    for problem in report.problems:
        if problem.level != "error" and (quiet or (problem.level == "info" and not verbose)):
            continue
        stream = sys.stderr if problem.level == "error" else sys.stdout
        label = {"info": "note"}.get(problem.level, problem.level)
        line = problem.line()
        if verbose and problem.rows and rows > 5:
            shown = copy.copy(problem)
            shown.rows = problem.rows[:rows]
            line = shown.line(verbose=True)
        print(f"{label}: {line}", file=stream)
        if verbose:
            details = problem.details()
            for detail in details[:rows]:
                print(f"    {detail}", file=stream)
            if len(details) > rows:
                print(
                    f"    ... {len(details) - rows:,} more kept (validate --verbose --rows "
                    f"{len(details)} lists them)",
                    file=stream,
                )


def _terminated(signum, frame):
    raise KeyboardInterrupt


def _validate(args) -> int:
    from icp_research.data.validation import validate

    report = validate(args.config)
    _print_problems(report, verbose=args.verbose, quiet=args.quiet, rows=max(args.rows, 0))
    if args.verbose:
        for item in report.inputs:
            print(
                f"read {item['table']}: {item['path']} ({item['rows']:,} rows, "
                f"sha256 {item['sha256'][:12]})"
            )
    if not args.quiet:
        rows = ", ".join(
            f"{i['table']} {i['rows']:,} row{'' if i['rows'] == 1 else 's'}"
            + (f" → {i['records']:,} {i['table']}" if "records" in i else "")
            for i in report.inputs
        )
        verdict = "OK" if report.ok else f"{len(report.errors)} error(s)"
        read = f"{rows}; " if rows else "no table read; "
        print(f"{verdict}: {read}{len(report.warnings)} warning(s)")
    return 0 if report.ok else 2


def _score(args) -> int:
    from icp_research.scoring.model import score_file

    notes: list[str] = []
    summary = score_file(
        icp=args.icp,
        input=args.input,
        output=args.output,
        config=args.config,
        force=args.force,
        rules_only=args.rules_only,
        notes=notes,
        sheet=args.sheet,
    )
    if not args.quiet:
        print(summary)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    return 0


def _init(args) -> int:
    from icp_research.pipeline.starter import copy_notebooks, write_starter

    written = write_starter(
        Path(args.directory),
        preset=args.preset,
        with_demo_data=args.with_demo_data,
        force=args.force,
    )
    if args.notebooks:
        written += copy_notebooks(Path(args.directory), force=args.force)
    if not args.quiet:
        for path in written:
            print(f"wrote {path}")
        print(
            textwrap.dedent(
                f"""
                Next: edit {written[0]} so that each [tables.*] path points at your export and each
                column mapping names your export's column, then run
                  icp-research validate --config {written[0]}
                """
            ).strip()
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
