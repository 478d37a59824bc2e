"""icp-research: find your Ideal Customer Profile from your own CRM, billing and usage data.

The public API is small:

- :func:`open_study` -- the data a notebook works on (demo data by default), as of a date;
- :func:`load_config`, :func:`validate`, :func:`load_tables` -- configs and exports;
- :func:`load_demo` -- the bundled demo dataset's canonical tables;
- :func:`run_suite` -- what ``icp-research run`` does.

Statistics live in ``icp_research.methods``, one module per report in ``icp_research.analyses``;
analyses return :class:`~icp_research.result.Result` objects.
"""

from icp_research.data.config import load_config
from icp_research.data.loading import load_tables
from icp_research.data.study import Study, open_study
from icp_research.data.validation import validate
from icp_research.errors import (
    AnalysisError,
    ConfigError,
    DataError,
    IcpError,
    InputError,
    NotEnoughData,
)
from icp_research.version import __version__


def load_demo(as_of=None):
    """The bundled demo dataset: a :class:`Study` over its canonical tables.

    3,000 accounts of a fictitious B2B SaaS company with opportunities, subscriptions, churn
    events, NPS, usage, feedback, survey answers and deal roles, generated from the documented
    planted truth in :mod:`icp_research.data.demo`. ``study.tables`` holds the canonical tables.
    """
    return open_study(None, as_of=as_of)


def run_suite(**kwargs):
    """Run the report suite (see :func:`icp_research.pipeline.runner.run_suite`)."""
    from icp_research.pipeline.runner import run_suite as _run

    return _run(**kwargs)


__all__ = [
    "__version__",
    "AnalysisError",
    "ConfigError",
    "DataError",
    "IcpError",
    "InputError",
    "NotEnoughData",
    "Study",
    "load_config",
    "load_demo",
    "load_tables",
    "open_study",
    "run_suite",
    "validate",
]
