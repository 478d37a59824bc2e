"""Determinism at demo scale: two runs of the whole suite on the demo data, compared file by file.

The test suite proves it on a small hostile project (tests/test_hostile.py); this script does
the same on the 3,000-account demo, which takes two full runs (a few minutes), with different
hash seeds and job counts so that set ordering and scheduling cannot hide behind luck.

    python benchmarks/check_determinism.py [--keep DIR]

Every file under artifacts/ must be byte-identical (manifest.json apart from its timestamps and
durations), and every HTML page identical apart from the time it was generated. Exits 1 and
lists the files that differ otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(out: Path, hash_seed: str, jobs: str) -> None:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "icp_research.cli", "run", "--demo", "--out", str(out)]
    subprocess.run([*command, "--jobs", jobs, "--quiet"], check=True, env=env, cwd=REPO)


def manifest(path: Path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("started_at", "finished_at"):
        data.pop(key, None)
    for notebook in data.get("notebooks", []):
        notebook.pop("seconds", None)
    return data


def page(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<when>", text)
    return re.sub(r"\d+(?:\.\d+)? s\b|\d+ min \d\d s", "<seconds>", text)


def differences(first: Path, second: Path) -> list[str]:
    found = []
    names = sorted(
        {str(p.relative_to(first)) for p in first.rglob("*") if p.is_file()}
        | {str(p.relative_to(second)) for p in second.rglob("*") if p.is_file()}
    )
    for name in names:
        a, b = first / name, second / name
        if not (a.exists() and b.exists()):
            found.append(f"{name}: only in one run")
        elif name.endswith(".ipynb"):
            continue  # executed notebooks carry papermill's timings
        elif name.endswith("manifest.json"):
            if manifest(a) != manifest(b):
                found.append(name)
        elif name.endswith(".html"):
            if page(a) != page(b):
                found.append(name)
        elif a.read_bytes() != b.read_bytes():
            found.append(name)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="write the two runs here instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        base = Path(args.keep or temporary)
        first, second = base / "one" / "demo", base / "two" / "demo"
        run(first, hash_seed="1", jobs="2")
        run(second, hash_seed="2", jobs="1")
        found = differences(first, second)
    for name in found:
        print(f"differs: {name}")
    print("identical" if not found else f"{len(found)} file(s) differ")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
