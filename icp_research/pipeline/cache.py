"""Reports reused when nothing they depend on changed.

A report's cache key is a digest of everything that decides its content: the kit's code and
templates, the notebook file, the parameters it is given, the input files (their sha256, from the
manifest's inputs) and the config, the as-of date, and the keys of the reports whose artifacts it
reads. Change one parameter of one report and that report and the reports after it rerun; the
others are copied from the cache (the executed notebook and the artifacts the registry declares
for it), and their HTML is rendered afresh. ``--no-cache`` runs everything (and refreshes the
cache with what ran).

The cache is a folder beside the runs (``reports/.icp-cache``); each entry is written to a
temporary folder and renamed into place, so a killed run never leaves half an entry. Only the
kit's registered reports are cached (a notebook of your own always runs). The ICP health
report's key also holds the previous run's ``icp.json`` and manifest, which it compares with.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from icp_research.analyses import registry
from icp_research.bundled import code_fingerprint

CACHE_DIR = ".icp-cache"


def files_of(notebook: str) -> list[str] | None:
    """The files a registered report writes, relative to the run folder; None when the notebook
    is not a registered report (it is then never cached)."""
    analysis = registry.ANALYSES_BY_NOTEBOOK.get(notebook)
    if analysis is None:
        return None
    files = [f"{notebook}.ipynb", f"artifacts/results/{analysis.name}.json"]
    for artifact in analysis.saves:
        if artifact.kind == "table":
            files += [f"artifacts/{artifact.name}.csv", f"artifacts/tables/{artifact.name}.json"]
        elif artifact.kind == "json":
            files.append(f"artifacts/{artifact.name}.json")
        else:
            files.append(f"artifacts/{artifact.filename}")
    return files


class ReportCache:
    """Cached reports under ``folder`` (``enabled`` False: nothing is read or written; ``reuse``
    False: nothing is read, what runs is written)."""

    def __init__(self, folder: Path, *, enabled: bool = True, reuse: bool = True):
        self.folder = Path(folder)
        self.enabled = enabled
        # --no-cache: nothing is reused, but what runs is still stored for the next run.
        self.reuse = reuse

    def key(self, spec, parameters: dict, inputs: list, config_digest: str, upstream: list) -> str:
        """The report's cache key (see the module docstring)."""
        digest = hashlib.sha256()
        previous = parameters.get("previous_run")
        parts = {
            # A report that compares with the previous run depends on what that run concluded.
            "previous": _previous_digest(previous) if previous else "",
            "code": code_fingerprint(),
            "notebook": hashlib.sha256(Path(spec.path).read_bytes()).hexdigest(),
            "parameters": {k: parameters[k] for k in sorted(parameters)},
            "inputs": sorted((i.get("table", ""), i.get("sha256", "")) for i in inputs),
            "config": config_digest,
            "upstream": sorted(upstream),
        }
        digest.update(json.dumps(parts, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:32]

    def cacheable(self, spec, parameters: dict) -> bool:
        return self.enabled and files_of(spec.name) is not None

    def restore(self, key: str, spec, staging: Path) -> bool:
        """Copy a cached report into ``staging``; False when there is no complete entry."""
        entry = self.folder / key
        if not (self.enabled and self.reuse) or not (entry / "entry.json").exists():
            return False
        try:
            listed = json.loads((entry / "entry.json").read_text(encoding="utf-8"))["files"]
            for relative in listed:
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(entry / relative, target)
        except (OSError, ValueError, KeyError):
            return False
        return True

    def store(self, key: str, spec, staging: Path) -> None:
        """Keep a report that ran without errors (best effort: a full disk only costs reuse)."""
        files = files_of(spec.name)
        if not self.enabled or files is None or (self.folder / key).exists():
            return
        temporary = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.folder))
            present = [f for f in files if (staging / f).is_file()]
            for relative in present:
                target = temporary / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(staging / relative, target)
            (temporary / "entry.json").write_text(
                json.dumps({"notebook": spec.name, "files": present}), encoding="utf-8"
            )
            os.replace(temporary, self.folder / key)
        except OSError:
            if temporary is not None:
                shutil.rmtree(temporary, ignore_errors=True)


def _previous_digest(run: str) -> str:
    """sha256 of a previous run's ICP and manifest (of nothing when it has neither)."""
    digest = hashlib.sha256()
    for name in ("icp.json", "manifest.json"):
        path = Path(run) / "artifacts" / name
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def config_digest(config_path) -> str:
    """sha256 of the config file's bytes ('' for the bundled demo's defaults)."""
    if not config_path:
        return ""
    try:
        return hashlib.sha256(Path(config_path).read_bytes()).hexdigest()
    except OSError:
        return ""


def resolve_only(specs, only) -> set[str] | None:
    """The notebooks ``--only`` asks for, with every notebook they read from (transitively).

    ``only`` holds numbers (``04``), notebook names (``04_predictor_significance``) or analysis
    names (``significance``), as a list or one comma-separated string. None: every notebook.
    """
    if not only:
        return None
    from icp_research.errors import InputError

    wanted = [
        w.strip()
        for item in ([only] if isinstance(only, str) else only)
        for w in str(item).split(",")
        if w.strip()
    ]
    by_name = {s.name: s for s in specs}
    chosen = set()
    for word in wanted:
        analysis = registry.ANALYSES_BY_NAME.get(word)
        matches = [
            s.name
            for s in specs
            if s.name == word
            or s.name.split("_", 1)[0] == word.zfill(2)
            or (analysis is not None and s.name == analysis.notebook)
        ]
        if not matches:
            known = ", ".join(s.name for s in specs)
            raise InputError(f"--only {word}: no such report; the reports are {known}")
        chosen.update(matches)
    todo = list(chosen)
    while todo:
        for before in by_name[todo.pop()].after:
            if before in by_name and before not in chosen:
                chosen.add(before)
                todo.append(before)
    return chosen
