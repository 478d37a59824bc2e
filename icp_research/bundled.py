"""Where the report notebooks and templates are: inside the installed package or the checkout.

``notebooks/`` and ``templates/`` live at the top of the repository, where analysts look for
them. A wheel ships them inside the package as ``icp_research/bundled/notebooks`` and
``icp_research/bundled/templates`` (see ``[tool.setuptools]`` in pyproject.toml), so an installed
kit runs from any folder; a source checkout or an editable install uses the top-level folders.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from icp_research.version import __version__

PACKAGE_DIR = Path(__file__).resolve().parent


def _bundled(name: str, marker: str) -> Path:
    for candidate in (PACKAGE_DIR / "bundled" / name, PACKAGE_DIR.parent / name):
        if (candidate / marker).exists():
            return candidate
    raise FileNotFoundError(
        f"icp-research's {name}/ folder is missing (looked in {PACKAGE_DIR / 'bundled' / name} "
        f"and {PACKAGE_DIR.parent / name}); reinstall the kit: pip install --force-reinstall "
        "icp-research"
    )


def notebooks_dir() -> Path:
    """The folder of the kit's report notebooks (``NN_name.ipynb``)."""
    return _bundled("notebooks", "00_data_overview.ipynb")


def templates_dir() -> Path:
    """The folder of the kit's templates: ``report/`` (nbconvert), ``icp.toml``, ``presets/``."""
    return _bundled("templates", "icp.toml")


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A digest of the kit's own code and templates (the version alone does not change while a
    checkout is edited)."""
    digest = hashlib.sha256(__version__.encode())
    roots = [PACKAGE_DIR, templates_dir()]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".j2", ".css", ".json", ".toml"):
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()
