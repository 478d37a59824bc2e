"""``icp-research init``: write a commented starter config (optionally a CRM preset)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from icp_research.bundled import notebooks_dir, templates_dir
from icp_research.data.demo import write_demo_exports
from icp_research.errors import InputError

#: Preset name -> template file, relative to the kit's templates folder.
PRESETS = {
    "generic": "icp.toml",
    "salesforce": "presets/salesforce.toml",
    "hubspot": "presets/hubspot.toml",
    "salesforce-api": "presets/salesforce-api.toml",
    "odoo": "presets/odoo.toml",
}


def write_starter(
    directory: Path, *, preset: str = "generic", with_demo_data: bool = False, force: bool = False
) -> list[Path]:
    """Write ``directory/icp.toml`` (and, with ``with_demo_data``, the demo exports it maps).

    Returns the written paths, the config first. Refuses to replace an existing icp.toml
    unless ``force``.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(
            f"{directory} is a file, not a folder; give init a folder to write icp.toml into "
            "(e.g. icp-research init my-icp)"
        )
    target = directory / "icp.toml"
    if target.exists() and not force:
        raise InputError(
            f"{target} already exists; pass --force to replace it, or choose another folder"
        )
    if with_demo_data:
        return write_demo_exports(directory, force=force)
    directory.mkdir(parents=True, exist_ok=True)
    source = templates_dir() / PRESETS[preset] if preset in PRESETS else None
    if source is None or not source.exists():
        raise InputError(f"the {preset} template is missing ({source}); reinstall icp-research")
    shutil.copyfile(source, target)
    return [target]


def copy_notebooks(directory: Path, *, force: bool = False) -> list[Path]:
    """Copy the kit's report notebooks into ``directory/notebooks`` for an analyst to adapt, and
    point ``directory/icp.toml`` at them (``[project] notebooks = "notebooks"``).

    Refuses, before writing anything, when a notebook of the same name is there unless
    ``force``. Returns the written notebooks.
    """
    directory = Path(directory)
    target = directory / "notebooks"
    sources = sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    clashes = [target / s.name for s in sources if (target / s.name).exists()]
    if clashes and not force:
        raise InputError(
            f"{clashes[0]} already exists; nothing was copied. Pass --force to replace the "
            "notebooks, or move your copies first"
        )
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        shutil.copyfile(source, target / source.name)
        written.append(target / source.name)
    config = directory / "icp.toml"
    if config.exists():
        text = config.read_text(encoding="utf-8")
        if not re.search(r"(?m)^\s*notebooks\s*=", text):
            line = 'notebooks = "notebooks"  # this project\'s copy of the report notebooks\n'
            if re.search(r"(?m)^\[project\]\s*$", text):
                text = re.sub(r"(?m)^\[project\]\s*$\n?", "[project]\n" + line, text, count=1)
            else:
                text = "[project]\n" + line + "\n" + text
            config.write_text(text, encoding="utf-8")
    return written
