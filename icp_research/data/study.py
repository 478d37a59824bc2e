"""The object every notebook starts from: the data, as of a date, with its facts.

>>> import icp_research as icp
>>> study = icp.open_study()            # the bundled demo data
>>> study.facts.head()                  # one row per account, as of study.as_of
>>> study.deals.head()                  # one row per deal, with account attributes

A study is a read-only view: tables are cut to what was known on ``as_of`` (see
:func:`icp_research.data.facts.as_of_view`); the facts are computed once and cached.
"""

from __future__ import annotations

import datetime as dt
import json
import weakref
from functools import cached_property
from pathlib import Path

import pandas as pd

from icp_research.artifacts import Artifact, read_artifact, write_artifact
from icp_research.bundled import code_fingerprint
from icp_research.data.config import Config, load_config
from icp_research.data.demo import DEMO_CONFIG
from icp_research.data.facts import (
    account_facts,
    as_of_view,
    deal_facts,
    join_account_attributes,
)
from icp_research.data.loading import (
    AttributeSpec,
    Dataset,
    ValidationReport,
    account_groups,
    file_sha256,
    load_tables,
)
from icp_research.data.schema import dated_extreme, default_as_of
from icp_research.data.trust import (
    Screening,
    TrustReport,
    outcome_variation,
    screen_attributes,
    trust_checks,
    with_outcome_like,
)
from icp_research.formatting import set_currency


class Study:
    """Canonical tables as of a date, with account and deal facts.

    Attributes
    ----------
    config : Config
    as_of : pandas.Timestamp
    tables : dict of DataFrame -- the as-of view of every loaded table
    raw_tables : dict of DataFrame -- everything loaded, including what happened after as_of
    attributes : AttributeSpec -- candidate ICP predictors
    report : ValidationReport -- what validation found when the data was loaded
    artifacts_dir : Path or None -- where :meth:`save_table` writes machine-readable outputs
    """

    def __init__(self, dataset: Dataset, as_of=None, artifacts_dir: str | Path | None = None):
        self.dataset = dataset
        self.config: Config = dataset.config
        self.raw_tables: dict[str, pd.DataFrame] = dataset.tables
        self.report: ValidationReport = dataset.report
        if as_of in (None, ""):
            as_of = self.config.as_of or default_as_of(self.raw_tables) or dt.date.today()
        self.as_of = pd.Timestamp(as_of).normalize()
        self.tables = as_of_view(self.raw_tables, self.as_of)
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else None
        self._attributes = dataset.attributes
        # Columns a later date's data showed to be outcome-like (see :meth:`at`): what a
        # column means does not change with the date, only how much of it the data shows.
        self._outcome_like_later: dict[str, str] = {}
        set_currency(dataset.currency)  # how this process's reports write money

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v):,}" for k, v in self.tables.items())
        return f"<Study {self.project!r} as of {self.as_of:%Y-%m-%d}: {sizes}>"

    @property
    def project(self) -> str:
        return self.config.project_name

    @property
    def analysis(self) -> dict:
        return self.config.analysis

    @property
    def alpha(self) -> float:
        return float(self.config.analysis["alpha"])

    def has(self, table: str) -> bool:
        """True when ``table`` was loaded and has rows as of the study date."""
        return table in self.tables and len(self.tables[table]) > 0

    def absent(self, table: str) -> str:
        """Why ``table`` gives nothing to analyse, in words for a report.

        "there is no subscriptions table" when it was not loaded; when it was, but nothing in
        it is dated on or before the analysis date (a ``--quarter`` before the first record),
        says so, so that a reader does not go looking for a missing export.
        """
        if table not in self.raw_tables or not len(self.raw_tables[table]):
            return f"there is no {table} table"
        if not self.has(table):
            return (
                f"the {table} table has nothing dated on or before the analysis date "
                f"({self.as_of:%Y-%m-%d})"
            )
        return f"the {table} table has no usable rows"

    def _precomputed(self, name: str) -> pd.DataFrame | None:
        """A frame the runner computed once for this as-of date, if there is one."""
        meta = self.dataset.derived_meta
        if name in self.dataset.derived and meta.get("as_of") == self.as_of.strftime("%Y-%m-%d"):
            frame = self.dataset.derived[name].copy(deep=False)  # the rows are read-only
            frame.attrs.update(meta.get("attrs", {}).get(name, {}))
            if "as_of" in frame.attrs:
                frame.attrs["as_of"] = pd.Timestamp(frame.attrs["as_of"])
            return frame
        return None

    def precompute(self) -> None:
        """Compute facts and deals now and keep them with the dataset (saved in snapshots)."""
        self.dataset.derived = {"facts": self.facts, "deals": self.deals}
        self.dataset.derived_meta = {
            "as_of": self.as_of.strftime("%Y-%m-%d"),
            "attrs": {"facts": dict(self.facts.attrs), "deals": dict(self.deals.attrs)},
        }

    @cached_property
    def facts(self) -> pd.DataFrame:
        """One row per account (see :data:`icp_research.data.facts.FACT_COLUMNS`)."""
        cached = self._precomputed("facts")
        if cached is not None:
            return cached
        return account_facts(
            self.tables,
            self.as_of,
            analysis=self.config.analysis,
            segments=self.config.segments,
            already_as_of=True,
            usage_source=self.dataset.usage_source,
            raw_tables=self.raw_tables,
        )

    @cached_property
    def deals(self) -> pd.DataFrame:
        """One row per deal with account attributes (empty without an opportunities table)."""
        cached = self._precomputed("deals")
        if cached is not None:
            return cached
        rows = self.__dict__.get("deal_rows")
        if rows is not None and len(rows) and "accounts" in self.tables:
            return join_account_attributes(rows, self.tables["accounts"])  # over the same rows
        return deal_facts(self.tables, self.as_of, already_as_of=True)

    @cached_property
    def deal_rows(self) -> pd.DataFrame:
        """The deal facts without the account attributes joined (the deals' own columns and
        the computed ones): what deal outcomes are counted on, without the gigabyte the join
        costs at 10M deals. The joined :attr:`deals` when this study has them already."""
        if "deals" in self.__dict__:
            return self.deals
        cached = self._precomputed("deals")
        if cached is not None:
            return cached
        return deal_facts(self.tables, self.as_of, already_as_of=True, attributes=False)

    @property
    def attributes(self) -> AttributeSpec:
        """Candidate predictors: firmographic/technographic (pre-sale) and behavioural (post-sale).

        Outcome-like columns are not candidates, and contract terms are listed in
        ``contract`` (see :attr:`trust`).
        """
        screened = self.screening.spec
        spec = AttributeSpec(
            list(screened.categorical),
            list(screened.numeric),
            list(screened.behavioural),
            dict(screened.excluded),
            contract=dict(screened.contract),
            multi_select=dict(screened.multi_select),
        )
        for column in self.facts.columns:
            # Usage and survey answers are post-sale: they describe customers, never score leads.
            if column.startswith(("usage_", "survey_")) and column not in spec.behavioural:
                spec.behavioural.append(column)
        if "nps_mean" in self.facts and "nps_mean" not in spec.behavioural:
            spec.behavioural.append("nps_mean")
        period = self.facts.get("billing_period")
        if period is not None and "billing_period" not in spec.all and period.nunique() >= 2:
            # Monthly or annual: chosen at the sale, so a term of the contract, and known for
            # customers only (a lost deal's account has none): not a candidate trait. The churn
            # report tests it (annual payers often churn less); never an ICP rule.
            spec.contract.setdefault(
                "billing_period", "how the customer pays, chosen at the sale (a contract term)"
            )
        return spec

    @cached_property
    def screening(self) -> Screening:
        """Which loaded attributes are outcome-like or contract terms, as of this date
        (:func:`icp_research.data.trust.screen_attributes`); cheap, so every date has its own."""
        screening = screen_attributes(self._attributes, self.facts, self.deals, self.config)
        return with_outcome_like(screening, self._outcome_like_later)

    @cached_property
    def trust(self) -> TrustReport:
        """Can we trust what the data means, as of this date: outcome-like attributes, contract
        terms, outcomes that do not vary, implausible money and dates
        (:func:`icp_research.data.trust.trust_checks`)."""
        return trust_checks(
            self.raw_tables,
            self.facts,
            self.deals,
            self._attributes,
            self.config,
            screening=self.screening,
        )

    @cached_property
    def variation(self) -> dict[str, str]:
        """Outcomes this date's data cannot measure because they never vary (the ``variation``
        of :attr:`trust`, without the rest of the trust checks)."""
        if "trust" in self.__dict__:
            return self.trust.variation
        return outcome_variation(self.facts, self.deal_rows)

    @cached_property
    def account_groups(self) -> tuple[str, dict]:
        """Accounts linked into groups by a parent-company column (HubSpot's Parent Company,
        Salesforce's Parent Account): ``(column, {account id: the id heading its group})``, or
        ``("", {})`` (:func:`icp_research.data.loading.account_groups`). The subsidiaries of one
        group buy, renew and churn together: the group, not each account, is then the
        independent unit of every clustered test (:meth:`cluster_ids`)."""
        # The links are the export's: every date of one dataset shares them (computed once).
        cached = getattr(self.dataset, "_account_groups", None)
        if cached is not None:
            return cached
        accounts = self.raw_tables.get("accounts")
        if accounts is None or "account_id" not in accounts:
            return "", {}
        groups = account_groups(accounts)
        self.dataset._account_groups = groups
        return groups

    def cluster_ids(self, account_ids: pd.Series) -> pd.Series:
        """The independent unit of each row's account: the head of its group of linked
        accounts, else the account itself (the ids unchanged when no account is linked)."""
        _, head = self.account_groups
        if not head:
            return account_ids
        text = account_ids.astype("string").str.strip()
        return text.map(head).fillna(text).astype(object)

    def with_groups(self, frame: pd.DataFrame, cluster: str | None = "account_id"):
        """``(frame, cluster column)`` for clustered tests over ``frame``'s rows: with linked
        accounts, the frame with :data:`GROUP` added (a new column, the others shared) and
        :data:`GROUP`; otherwise ``frame`` and ``cluster`` as given."""
        if not self.account_groups[1] or "account_id" not in frame:
            return frame, cluster
        frame = frame.copy(deep=False)
        frame[GROUP] = self.cluster_ids(frame["account_id"]).to_numpy()
        return frame, GROUP

    @property
    def revenue_basis(self) -> str:
        """'subscriptions', 'bookings' (won deals stand in for ARR) or 'none'."""
        return self.facts.attrs.get("revenue_basis", "none")

    @property
    def churn_measured(self) -> bool:
        """Whether churn is known for the customers: from subscriptions, churn events (also
        without a subscriptions table) or a churned flag or status column."""
        facts = self.facts
        if "churned" not in facts or "is_customer" not in facts:
            return False
        customers = facts["is_customer"].fillna(False).astype(bool)
        return bool(facts.loc[customers, "churned"].notna().any())

    def forget(self, *names: str) -> None:
        """Drop computed frames (``"deals"``, ``"facts"``) this study holds; they are computed
        again if asked for. For long analyses that are done with a date's deal facts for a
        while (at 10M deals they are gigabytes)."""
        for name in names:
            self.__dict__.pop(name, None)
            if name == "deals":  # the deal rows may be the same frame
                self.__dict__.pop("deal_rows", None)

    def at(self, as_of) -> Study:
        """The same data seen from another date (the same object while a study of that date
        is alive: a backtest fold on the selection date does not recompute its facts)."""
        when = pd.Timestamp(as_of).normalize()
        if when == self.as_of:
            return self
        studies = self.dataset.__dict__.setdefault("_studies", weakref.WeakValueDictionary())
        key = (when, str(self.artifacts_dir))
        study = studies.get(key)
        # A copy of the dataset (copy.copy) shares this dictionary: only its own studies count.
        if study is None or study.dataset is not self.dataset:
            study = Study(self.dataset, when, self.artifacts_dir)
            studies[key] = study
        if when < self.as_of:
            # An earlier date sees fewer rows, so a column that tells the outcome apart on
            # this date's data may not look like it there: it stays out of the predictors.
            # This date's own screening only when it is known (or nothing later is): not
            # computed here just for this (it needs this date's deal frame).
            later = (
                {
                    name: f"{why} (on the data as of {self.as_of:%Y-%m-%d})"
                    for name, why in self.screening.outcome_like.items()
                }
                if "screening" in self.__dict__ or not self._outcome_like_later
                else {}
            )
            later.update(self._outcome_like_later)
            if later != study._outcome_like_later:
                study._outcome_like_later = later
                study.__dict__.pop("screening", None)
                study.__dict__.pop("trust", None)
        return study

    def save_table(self, frame: pd.DataFrame, name: str) -> Path | None:
        """Write ``artifacts/<name>.csv`` when the study has an artifacts folder."""
        if self.artifacts_dir is None:
            return None
        from icp_research.artifacts import write_csv

        return write_csv(frame, self.artifacts_dir / f"{name}.csv")

    def save_json(self, obj, name: str) -> Path | None:
        """Write ``artifacts/<name>.json`` when the study has an artifacts folder."""
        if self.artifacts_dir is None:
            return None
        from icp_research.artifacts import write_json

        return write_json(obj, self.artifacts_dir / f"{name}.json")

    def save_artifact(self, artifact: Artifact, obj) -> list[Path]:
        """Write a declared artifact (see :mod:`icp_research.analyses.registry`): a table as CSV
        for people plus a lossless copy the kit reads back, or JSON. Nothing without an
        artifacts folder."""
        if self.artifacts_dir is None:
            return []
        return write_artifact(artifact, obj, self.artifacts_dir)

    def read_artifact(self, artifact: Artifact):
        """A declared artifact saved by another report of this run (a DataFrame for tables), or
        None when it is not there."""
        if self.artifacts_dir is None:
            return None
        return read_artifact(artifact, self.artifacts_dir)

    def save_result(self, result, analysis: str) -> Path | None:
        """Write ``artifacts/results/<analysis>.json``: the result's title, findings and caveats.
        The run dashboard takes each report's key finding from here."""
        if self.artifacts_dir is None:
            return None
        from icp_research.artifacts import write_json

        return write_json(
            {
                "analysis": analysis,
                "title": getattr(result, "title", ""),
                "findings": list(getattr(result, "findings", []) or []),
                "caveats": list(getattr(result, "caveats", []) or []),
            },
            self.artifacts_dir / "results" / f"{analysis}.json",
        )


#: The column of the independent unit when accounts are linked into groups (a parent company):
#: the id heading each row's group (:meth:`Study.cluster_ids`).
GROUP = "_group"


def earliest_date(tables: dict[str, pd.DataFrame]):
    """The earliest date anywhere in the data, with where it is (``(date, "table.column")``), or
    ``(None, None)`` when nothing is dated."""
    earliest, where = dated_extreme(tables, latest=False)
    return (None, None) if earliest is None else (pd.Timestamp(earliest).date(), where)


def latest_date(tables: dict[str, pd.DataFrame]):
    """The latest date anywhere in the data, plans included, or None (the default as-of date is
    :func:`~icp_research.data.schema.default_as_of`)."""
    latest, _ = dated_extreme(tables)
    return None if latest is None else pd.Timestamp(latest).date()


def open_study(
    config: str | Path | Config | None = None,
    *,
    data_dir: str | Path | None = None,
    as_of=None,
    artifacts_dir: str | Path | None = None,
    reuse_snapshot: bool = True,
) -> Study:
    """Open the data a notebook works on.

    Parameters
    ----------
    config : path to icp.toml, a Config, or None / "" for the bundled demo data.
    data_dir : a snapshot written by ``icp-research run`` (canonical Parquet); when given, the
        exports are not parsed again.
    as_of : analysis date (YYYY-MM-DD); default: the config's ``as_of``, else the latest date of
        something that happened, not after today (:func:`~icp_research.data.schema.as_of_basis`).
    artifacts_dir : where tables for other tools are written (``Study.save_table``).
    reuse_snapshot : without ``data_dir``, read the snapshot of the project's latest run when
        it is still fresh (same exports, config and kit code; see :func:`fresh_snapshot`)
        instead of parsing the exports again.
    """
    if config in (None, ""):
        config = DEMO_CONFIG
    if not isinstance(config, Config):
        config = load_config(config)
    if data_dir in (None, "") and reuse_snapshot and config.path != DEMO_CONFIG.resolve():
        data_dir = fresh_snapshot(config)
    if data_dir not in (None, "") and (Path(data_dir) / "dataset.json").exists():
        dataset = Dataset.open(data_dir, config)
    else:
        dataset = load_tables(config, as_of=as_of or None)
    return Study(dataset, as_of, artifacts_dir or None)


def fresh_snapshot(config: Config) -> Path | None:
    """The data snapshot of the project's latest run when it is still fresh, else None.

    Fresh: written by this version of the kit's code, from the same config file, and every
    export it read is byte for byte what the config points at now (sha256). Reading a snapshot
    takes a fraction of parsing the exports again, which is what an analyst iterating in
    JupyterLab pays on every ``open_study``.
    """
    reports = Path(config.reports_dir)
    if not config.path or not reports.is_dir():
        return None
    candidates = sorted(
        reports.glob("*/artifacts/data/dataset.json"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    current: dict[str, str] = {}
    for meta_path in candidates[:5]:
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        fingerprint = meta.get("fingerprint") or {}
        if fingerprint.get("code") != code_fingerprint():
            continue
        if fingerprint.get("config_sha256") != file_sha256(Path(config.path)):
            continue
        inputs = {i.get("table"): i.get("sha256") for i in meta.get("inputs", [])}
        if set(inputs) != set(config.tables):
            continue
        fresh = True
        for name, table_config in config.tables.items():
            if table_config.path is None:  # rows from a database: known only once fetched
                fresh = False
                break
            path = Path(table_config.path)
            if name not in current:
                current[name] = file_sha256(path) if path.is_file() else ""
            if current[name] != inputs.get(name):
                fresh = False
                break
        if fresh:
            return meta_path.parent
    return None
