"""The bundled demo dataset: where its files are, and how to copy them.

"Lumen Metrics (demo)" is a fictitious B2B SaaS company: 3,000 accounts created from September
2023 to September 2026, 12,890 opportunities over 11 quarters, subscriptions (MRR), churn events,
NPS responses, monthly usage, feedback notes, survey answers and deal roles. The files in
``datasets/demo/`` are what its systems would export (source column names, a byte-order mark,
MM/DD/YYYY dates, currency strings, ``NULL`` / ``N/A`` blanks, a personal e-mail column, usage
as Parquet, the survey as an Excel sheet) with an ``icp.toml`` that maps them to the canonical
model. The data was simulated from a documented planted truth (the ICP is SaaS / FinTech, 100-999
employees, HubSpot or Salesforce as CRM; anti-patterns are fewer than 50 employees, no CRM and
Education). The simulator, its planted truth and the command that regenerates these files are
development tools kept outside the installed package (``devtools/demo_data.py`` in the source
repository).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from icp_research.errors import InputError

DEMO_DIR = Path(__file__).resolve().parent / "datasets" / "demo"
DEMO_CONFIG = DEMO_DIR / "icp.toml"
#: The demo's files, the config first.
DEMO_FILES = (
    "icp.toml",
    "accounts.csv",
    "opportunities.csv",
    "subscriptions.csv",
    "churn_events.csv",
    "nps.csv",
    "usage.parquet",
    "feedback.csv",
    "survey.xlsx",
    "deal_roles.csv",
)


def write_demo_exports(directory: str | Path, *, force: bool = False) -> list[Path]:
    """Copy the demo's exports and their ``icp.toml`` into ``directory``.

    Refuses, before writing anything, when any of the files already exists there (a user's own
    ``accounts.csv`` is never replaced) unless ``force``. Returns the written paths, config first.
    """
    directory = Path(directory)
    existing = [directory / name for name in DEMO_FILES if (directory / name).exists()]
    if existing and not force:
        names = ", ".join(p.name for p in existing[:4]) + (" ..." if len(existing) > 4 else "")
        raise InputError(
            f"{directory} already holds {names}; nothing was written. Choose an empty folder, "
            "or pass --force to replace those files with the demo's"
        )
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DEMO_FILES:
        shutil.copyfile(DEMO_DIR / name, directory / name)
        written.append(directory / name)
    return written
