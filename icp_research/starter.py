"""``icp-research init``: write a commented starter config (optionally a CRM preset)."""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import InputError

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
PRESETS = {
    "generic": TEMPLATES_DIR / "icp.toml",
    "salesforce": TEMPLATES_DIR / "presets" / "salesforce.toml",
    "hubspot": TEMPLATES_DIR / "presets" / "hubspot.toml",
}


def write_starter(
    directory: Path, *, preset: str = "generic", with_demo_data: bool = False, force: bool = False
) -> list[Path]:
    """Write ``directory/icp.toml`` (and, with ``with_demo_data``, the demo exports it maps).

    Returns the written paths, the config first. Refuses to replace an existing icp.toml
    unless ``force``.
    """
    directory = Path(directory)
    target = directory / "icp.toml"
    if target.exists() and not force:
        raise InputError(
            f"{target} already exists; pass --force to replace it, or choose another folder"
        )
    directory.mkdir(parents=True, exist_ok=True)
    if with_demo_data:
        from .demo import write_demo_exports

        write_demo_exports(directory)
        return [target] + sorted(p for p in directory.rglob("*") if p.is_file() and p != target)
    source = PRESETS.get(preset)
    if source is None or not source.exists():
        raise InputError(
            f"the {preset} template is missing ({source}); run icp-research from a source checkout"
        )
    shutil.copyfile(source, target)
    return [target]
