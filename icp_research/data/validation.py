"""``icp-research validate``: every check of the exports, from cells to what the data means.

The loader's checks (:mod:`icp_research.data.loading`: files, columns, cells, keys) come first;
when they find no error, the checks of what the data means (:mod:`icp_research.data.trust`:
outcome-like attributes, contract terms, outcomes that do not vary, implausible money and dates)
add their warnings, as of the run's default date.
"""

from __future__ import annotations

from pathlib import Path

from icp_research.data.config import Config
from icp_research.data.loading import ValidationReport, load_dataset
from icp_research.data.trust import check_dataset


def validate(config: Config | str | Path) -> ValidationReport:
    """Check every export named in the config; never raises for data problems."""
    dataset = load_dataset(config)
    if dataset.report.ok and "accounts" in dataset.tables:
        dataset.report.problems.extend(check_dataset(dataset).problems)
    return dataset.report
