"""icp-research: find your Ideal Customer Profile from your own CRM, billing and usage data.

The public API is small:

- :func:`open_study` -- the data a notebook works on (demo data by default), as of a date;
- :func:`load_config`, :func:`validate`, :func:`load_tables` -- configs and exports;
- :func:`load_demo` -- the bundled demo dataset's canonical tables;
- :func:`run_suite` -- what ``icp-research run`` does.

Statistics live in ``icp_research.methods``, one module per report in ``icp_research.analyses``;
analyses return :class:`~icp_research.result.Result` objects.
"""

from icp_research.errors import (
    AnalysisError,
    ConfigError,
    DataError,
    IcpError,
    InputError,
    NotEnoughData,
)
from icp_research.version import __version__

# The data functions are imported on first use (PEP 562): importing the package, or a light
# module of it such as the kernel launcher's, does not import pandas and the rest (a third
# of a second that `icp-research run` spends before it can start the reports' warm parent).
_LAZY = {
    "load_config": "icp_research.data.config",
    "load_tables": "icp_research.data.loading",
    "Study": "icp_research.data.study",
    "open_study": "icp_research.data.study",
    "validate": "icp_research.data.validation",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'icp_research' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def load_demo(as_of=None):
    """The bundled demo dataset: a :class:`Study` over its canonical tables.

    3,000 accounts of a fictitious B2B SaaS company with opportunities, subscriptions, churn
    events, NPS, usage, feedback, survey answers and deal roles, generated from the documented
    planted truth in :mod:`icp_research.data.demo`. ``study.tables`` holds the canonical tables.
    """
    from icp_research.data.study import open_study  # a lazy name (see __getattr__)

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
