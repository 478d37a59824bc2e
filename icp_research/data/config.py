"""Reading ``icp.toml``: where the exports are, how their columns map to the canonical model,
which attributes are candidate ICP predictors, and the analysis settings.

The file is TOML, read with the standard library. Paths are relative to the config file.
Every mistake is reported with the file, the line or key, and the fix.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from icp_research.data.churn_source import setting_problem
from icp_research.data.schema import TABLES
from icp_research.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
}

# Text that means "no value" in any column. Words that may be real values (None, NA, nil,
# "-") are only treated as missing in numeric and date columns.
MISSING_TOKENS = ("", "NULL", "null", "Null", "N/A", "n/a", "#N/A", "#NULL!", "NaN", "nan")
MISSING_TOKENS_NUMERIC = MISSING_TOKENS + ("None", "none", "NA", "na", "-", "--", "—", "nil", "?")

ANALYSIS_DEFAULTS: dict = {
    # Best customers: top share of retained customers by this metric (arr, clv, nrr, tenure,
    # expansion).
    "best_customer_metric": "arr",
    "best_customer_top_share": 0.2,
    # "cohort": the top share of each start year's customers (churned ones count), so that
    # tenure and survival do not decide who is best; "all": of retained customers, all years.
    "best_customer_ranking": "cohort",
    # Significance level after multiple-testing correction, and the correction method.
    "alpha": 0.05,
    "correction": "fdr_bh",
    # Levels of a categorical attribute seen on fewer accounts are pooled into "(other)".
    "min_level_count": 10,
    # Subgroups must cover at least this share of rows.
    "min_support": 0.02,
    "max_depth": 3,
    # Churn within this many months of becoming a customer is "early churn" (onboarding).
    "early_churn_months": 6,
    # Quarters held out to confirm what earlier data suggests (the significance report: the
    # latest quarters; the blueprint: the quarters before the validation quarters).
    "holdout_quarters": 2,
    # The blueprint's latest quarters, kept to validate the ICP and the fit score: nothing is
    # chosen on them.
    "validation_quarters": 2,
    # Expected remaining lifetime used in CLV is capped at this many years.
    "clv_horizon_years": 5,
    # Future revenue in CLV is discounted at this rate per year (0 <= r < 1; 0: no discounting).
    "discount_rate": 0.1,
    # Net revenue retention above this (ARR now / ARR a year ago) is reported as implausible.
    "max_plausible_nrr": 3.0,
    # Which record says an account churned: auto, subscriptions, churn_events or an accounts
    # column holding a churned flag or status (see icp_research.data.churn_source).
    "churn_source": "auto",
    # referral_source values that count as "referred by a customer" (case-insensitive).
    "referral_values": ["referral", "customer referral", "referred", "word of mouth"],
    "seed": 42,
}

SEGMENT_DEFAULTS: dict = {
    # Rule-based size segments by employee count: SMB < 200 <= Mid-market < 2000 <= Enterprise.
    "employees": [200, 2000],
    "labels": ["SMB", "Mid-market", "Enterprise"],
}

SCORING_DEFAULTS: dict = {
    # won, retained or best_customer; None (not set): the blueprint chooses one the data can
    # measure (won when closed deals have both outcomes, else retained, else best_customer).
    "outcome": None,
    "tiers": {"Tier 1": 70, "Tier 2": 40, "Tier 3": 0},
}

KNOWN_SECTIONS = {
    "project",
    "tables",
    "attributes",
    "analysis",
    "segments",
    "scoring",
    "codebook",
    "survey",
    "labels",
    "warehouse",
}
TABLE_KEYS = {
    "path",
    "table",
    "sql",
    "format",
    "date_format",
    "sheet",
    "header_row",
    "delimiter",
    "encoding",
    "decimal",
    "missing_values",
    "keep_unmapped",
    "keep_deleted",
    "drop",
    "columns",
    "values",
    "engine",
    "line_items",
    "rollup",
    "history",
    "invoices",
    "movements",
    "account_id_from",
    "cents",
    "price_per_seat",
    "lost_when",
    "group_column",
}
ENGINES = ("pandas", "duckdb")
# Settings of text exports that mean nothing to a Parquet source aggregated by DuckDB.
PANDAS_ONLY_KEYS = (
    "date_format",
    "sheet",
    "header_row",
    "delimiter",
    "encoding",
    "decimal",
    "missing_values",
    "values",
)


# Settings of files that mean nothing to rows read from a database (table = / sql =).
FILE_ONLY_KEYS = (
    "format",
    "sheet",
    "header_row",
    "delimiter",
    "encoding",
    "engine",
    "group_column",
)
WAREHOUSE_KEYS = ("url",)


ATTRIBUTE_KEYS = (
    "categorical",
    "numeric",
    "exclude",
    "keep",
    "contract",
    "multi_select",
    "single_select",
)
PROJECT_KEYS = ("name", "as_of", "reports_dir", "notebooks", "currency", "exchange_rates")


@dataclass
class TableConfig:
    """How one export maps onto one canonical table."""

    name: str
    # The export file; None for rows read from the [warehouse] database (table / sql).
    path: Path | None
    format: str
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> source column
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # canonical col -> recode
    # One strftime pattern, or several tried in order (a tuple); None reads ISO dates.
    date_format: str | tuple[str, ...] | None = None
    sheet: str | int | None = None
    # The row (from 1) that holds the column names, for exports with title rows above them.
    header_row: int = 1
    delimiter: str | None = None
    encoding: str | None = None
    decimal: str = "."
    missing_values: tuple[str, ...] = ()
    keep_unmapped: bool = True
    keep_deleted: bool = False
    drop: tuple[str, ...] = ()
    # "pandas": loaded into memory; "duckdb": left in Parquet and aggregated by SQL (usage only).
    engine: str = "pandas"
    # canonical column -> the text every row gets (``stage = { value = "won" }``).
    constants: dict[str, str] = field(default_factory=dict)
    # canonical column -> several source columns, the first filled one per row; ``columns``
    # names them joined with " | ".
    coalesce: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Opportunities only: rows sharing an opportunity_id are line items of one deal, rolled up.
    line_items: bool = False
    # Accounts only: several rows per account_id (a deals report with the company's fields on
    # every row), rolled up into one account each.
    rollup: bool = False
    history: bool = False
    invoices: bool = False
    # Subscriptions only: each row is a signed change of recurring revenue (MRR movements).
    movements: bool = False
    # Money columns hold cents (Stripe's API and its SQL tables): divided by 100 when read.
    # None: not set, and a money column whose header says cents ("MRR (in cents)") is in cents.
    cents: bool | None = None
    # Opportunities: source column -> the cell texts (casefolded) that make a deal lost
    # whatever its stage says (Odoo archives a lost deal: ``lost_when = { "Active" = "False" }``).
    lost_when: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # A board export in groups (monday.com, a grouped spreadsheet): each row's group title
    # goes to a column of this name; title, repeated header and blank rows are left out.
    group_column: str | None = None
    # Subscriptions: price is per seat (Stripe's plan amount x quantity), times seats.
    price_per_seat: bool = False
    # (table, key): account_id is looked up through that table's key (``account_id_from``).
    account_id_from: tuple[str, str] | None = None
    # Key columns of a lookup that are not canonical columns (kept as text ids, then dropped).
    lookup_keys: tuple[str, ...] = ()
    # Rows from the [warehouse] database instead of a file: a table name or a query.
    table: str | None = None
    sql: str | None = None

    @property
    def from_database(self) -> bool:
        return self.table is not None or self.sql is not None

    @property
    def display_path(self) -> str:
        """How messages name the source: the file name, the database table or the query."""
        if self.table is not None:
            return self.table
        if self.sql is not None:
            from icp_research.data.database import query_label

            return query_label(self.sql)
        return self.path.name

    @property
    def source_noun(self) -> str:
        """What holds the columns, in messages: the file, the table or the query's result."""
        if self.table is not None:
            return "table"
        return "query's result" if self.sql is not None else "file"


@dataclass
class WarehouseConfig:
    """``[warehouse]``: the database that tables with ``table =`` or ``sql =`` come from."""

    # As written in icp.toml: ``${NAME}`` references are expanded only when the database is
    # opened (see :func:`icp_research.data.database.expand_url`), so the config never holds
    # the secrets they name.
    url: str
    base_dir: Path = field(default_factory=Path.cwd)
    label: str = "config"

    @property
    def display_url(self) -> str:
        """The url with its password shown as ``***`` (for messages, manifests, logs)."""
        from icp_research.data.database import redact_url

        return redact_url(self.url)

    def resolved_url(self) -> str:
        """The url with ``${NAME}`` read from the environment; a secret: never print it."""
        from icp_research.data.database import expand_url

        return expand_url(self.url, f"{self.label} [warehouse]")

    def __repr__(self) -> str:
        return f"WarehouseConfig(url={self.display_url!r})"


def snake_name(name: str) -> str:
    """The name an unmapped export column gets as an attribute: 'Lifecycle Stage' ->
    'lifecycle_stage', '2FA enabled' -> 'c_2fa_enabled', 'Facturación del plan' ->
    'facturación_del_plan' (letters of any language are kept; was 'facturaci_n_del_plan')."""
    text = re.sub(r"[\W_]+", "_", str(name).strip()).strip("_").lower()
    if not text:
        return "column"
    return text if text[0].isalpha() else f"c_{text}"


def _attribute_names(names: list[str], accounts: TableConfig | None) -> list[str]:
    """``[attributes]`` names as the accounts table calls its columns: a canonical name as it
    is, a mapped source column by its canonical name ("Branche" -> "industry"), any other
    column by the name it gets when kept unmapped ("Lifecycle Stage" -> "lifecycle_stage")."""
    mapped = accounts.columns if accounts is not None else {}
    by_source = {source: canonical for canonical, source in mapped.items()}
    out = []
    for name in names:
        name = name if name in mapped else by_source.get(name, snake_name(name))
        if name not in out:
            out.append(name)
    return out


def currency_symbol(text: str) -> str:
    """``[project] currency`` as the reports write it: "EUR" and "€" -> "€", "CHF" -> "CHF ";
    anything else as written ("R$", "kr ")."""
    from icp_research.data.cleaning import CURRENCY_SYMBOLS

    return CURRENCY_SYMBOLS.get(text.strip().lower(), text)


def currency_key(text: str) -> str:
    """One name per currency, however a cell, a header or a config writes it: "EUR", "eur" and
    "€" -> "€"; "usd" -> "$"; a code the kit has no symbol for as its upper case ("sek" ->
    "SEK")."""
    from icp_research.data.cleaning import CURRENCY_SYMBOLS

    text = str(text).strip()
    return CURRENCY_SYMBOLS.get(text.lower(), text.upper()).strip()


def currency_code(key: str) -> str:
    """The ISO code of a :func:`currency_key` ("$" -> "USD", "€" -> "EUR"), as messages and a
    config name it; a key without one as it is."""
    from icp_research.data.cleaning import CURRENCY_SYMBOLS

    for code, symbol in CURRENCY_SYMBOLS.items():
        if len(code) == 3 and code.isalpha() and symbol.strip() == key:
            return code.upper()
    return key


def _exchange_rates(project: dict, cfg, label: str, problems: list) -> dict[str, float]:
    """``[project] exchange_rates = {EUR = 0.85, USD = 0.79}``: what one unit of each currency is
    worth in ``[project] currency``, by :func:`currency_key`."""
    rates = project.get("exchange_rates")
    if rates is None:
        return {}
    example = "exchange_rates = {EUR = 0.85, USD = 0.79}"
    if not isinstance(rates, dict) or not rates:
        problems.append(
            f"{label}: [project] exchange_rates must name each currency and what one unit of it "
            f"is worth in [project] currency, e.g. {example}"
        )
        return {}
    if cfg.currency is None:
        problems.append(
            f"{label}: [project] exchange_rates converts amounts to [project] currency, which "
            'is not set; add currency = "<the currency the rates convert to>" under [project]'
        )
        return {}
    out: dict[str, float] = {}
    for code, rate in rates.items():
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            problems.append(
                f"{label}: [project] exchange_rates {code} = {rate!r} must be a positive number "
                f"(what one {code} is worth in {cfg.currency.strip()}), e.g. {example}"
            )
            continue
        out[currency_key(code)] = float(rate)
    own = currency_key(cfg.currency)
    if own in out and out[own] != 1.0:
        problems.append(
            f"{label}: [project] exchange_rates gives {own} = {out[own]}, but {own} is the "
            "project's currency (1); remove it from exchange_rates"
        )
    out[own] = 1.0
    return out


@dataclass
class Config:
    """A parsed ``icp.toml``."""

    path: Path | None
    project_name: str = "ICP research"
    as_of: dt.date | None = None
    reports_dir: Path = Path("reports")
    # How the reports write money ("€", "CHF "); None: the currency the money cells name, else $.
    currency: str | None = None
    # [project] exchange_rates: what one unit of each currency is worth in `currency`, by
    # currency_key ("€" -> 0.85); the project's currency is 1. Empty: amounts never converted.
    exchange_rates: dict[str, float] = field(default_factory=dict)
    # The project's own report notebooks (a copy made by `init --notebooks`); None: the kit's.
    notebooks_dir: Path | None = None
    tables: dict[str, TableConfig] = field(default_factory=dict)
    categorical: list[str] | None = None
    numeric: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    # Columns kept as traits whatever their name or association (outcome-like, contract).
    keep: list[str] = field(default_factory=list)
    # Columns that are contract terms (seats, plan): never explain best-customer status.
    contract: list[str] = field(default_factory=list)
    # Multi-select columns ("Slack;Jira"): column -> its separator, or None to find it.
    multi_select: dict[str, str | None] = field(default_factory=dict)
    # Columns never read as multi-select, whatever their cells look like.
    single_select: list[str] = field(default_factory=list)
    analysis: dict = field(default_factory=lambda: copy.deepcopy(ANALYSIS_DEFAULTS))
    segments: dict = field(default_factory=lambda: copy.deepcopy(SEGMENT_DEFAULTS))
    scoring: dict = field(default_factory=lambda: copy.deepcopy(SCORING_DEFAULTS))
    codebook: dict = field(default_factory=dict)
    # [labels]: how reports name columns ("crm" -> "CRM") and values ([labels.values.<column>]).
    labels: dict = field(default_factory=dict)
    value_labels: dict = field(default_factory=dict)
    # [warehouse]: the database tables with table = / sql = are read from (None: files only).
    warehouse: WarehouseConfig | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def label(self) -> str:
        return self.path.name if self.path else "config"


def _suggest(word: str, options) -> str:
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text_list(value, where: str, problems: list[str], example: str) -> list[str]:
    """A TOML list of strings (numbers are taken as their text); a problem otherwise."""
    if not isinstance(value, list) or not all(isinstance(v, str) or _is_number(v) for v in value):
        problems.append(f"{where} = {value!r} must be a list in brackets, e.g. {example}")
        return []
    return [str(v) for v in value]


def _section(raw: dict, name: str, label: str, problems: list[str]) -> dict:
    value = raw.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(
            f"{label}: {name} = {value!r} must be a section: write [{name}] on its own line and "
            "its keys below it"
        )
        return {}
    return value


def parse_date(value, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return check_analysable(value.date(), where)
    if isinstance(value, dt.date):
        return check_analysable(value, where)
    try:
        day = dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where}: '{value}' is not a date; write it as YYYY-MM-DD") from None
    return check_analysable(day, where)


#: The years whose dates the analysis can hold (pandas' nanosecond timestamps end in 1677 / 2262).
FIRST_YEAR, LAST_YEAR = 1678, 2261


def check_analysable(day: dt.date, where: str) -> dt.date:
    """``day``, or a :class:`ConfigError` when it is outside the years that can be analysed."""
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ConfigError(
            f"{where}: {day.isoformat()} is outside the years {FIRST_YEAR}-{LAST_YEAR} that can be "
            "analysed; give a date in that range"
        )
    return day


_QUARTER = re.compile(r"^(\d{4})\s*-?\s*Q([1-4])$", re.IGNORECASE)


def last_quarter(today: dt.date | None = None) -> str:
    """The latest quarter that has ended by ``today`` (default: today), e.g. '2026Q3'."""
    today = today or dt.date.today()
    first_of_quarter = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    return quarter_label(first_of_quarter - dt.timedelta(days=1))


def resolve_quarter(quarter: str, today: dt.date | None = None) -> str:
    """'2026q3' -> '2026Q3'; 'last' (or 'previous') -> the latest quarter that has ended."""
    text = str(quarter).strip()
    if text.lower() in ("last", "previous"):
        return last_quarter(today)
    match = _QUARTER.match(text)
    if not match:
        raise ConfigError(
            f"--quarter '{quarter}' is not a quarter; write it like 2026Q3 (or 'last' for the "
            "latest quarter that has ended)"
        )
    if not FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR:
        raise ConfigError(
            f"--quarter '{quarter}' is outside the years {FIRST_YEAR}-{LAST_YEAR} that can be "
            "analysed; give a quarter in that range, e.g. 2026Q3"
        )
    return f"{match.group(1)}Q{match.group(2)}"


def quarter_end(quarter: str) -> dt.date:
    """'2026Q3' -> 2026-09-30 (the quarter's last day)."""
    match = _QUARTER.match(resolve_quarter(quarter))
    year, q = int(match.group(1)), int(match.group(2))
    month = 3 * q
    next_month = dt.date(year + (month == 12), month % 12 + 1, 1)
    return next_month - dt.timedelta(days=1)


def quarter_label(day: dt.date) -> str:
    """2026-08-14 -> '2026Q3'."""
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def quarter_start(quarter: str) -> dt.date:
    end = quarter_end(quarter)
    return dt.date(end.year, end.month - 2, 1)


def load_config(path: str | Path) -> Config:
    """Read and check an ``icp.toml``; raises :class:`ConfigError` with the line and the fix."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"{path}: config file not found; create one with `icp-research init` or pass --config"
        )
    if path.is_dir():
        candidate = path / "icp.toml"
        if candidate.exists():
            path = candidate
        else:
            raise ConfigError(f"{path}: is a folder with no icp.toml in it; pass the file itself")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}; fix that line") from None
    except RecursionError:
        raise ConfigError(
            f"{path}: tables or arrays are nested too deeply to read; an icp.toml needs at most "
            "four levels ([tables.accounts.values.industry])"
        ) from None
    return config_from_dict(raw, path.resolve())


def config_from_dict(raw: dict, path: Path | None = None) -> Config:
    """Build a :class:`Config` from the parsed TOML (or an equivalent dict)."""
    label = path.name if path else "config"
    base = path.parent if path else Path.cwd()
    problems: list[str] = []

    for section in raw:
        if section in KNOWN_SECTIONS:
            continue
        if not isinstance(raw[section], dict):
            # A bare key above every [section] ("path = ..." pasted at the top of the file).
            where = (
                " (a table's key: it belongs under its [tables.<name>] header)"
                if section in TABLE_KEYS
                else ""
            )
            problems.append(
                f"{label}: {section} = ... stands above every [section]{where}; fix: move it "
                "under the section it belongs to, or remove it"
            )
            continue
        problems.append(f"{label}: unknown section [{section}]{_suggest(section, KNOWN_SECTIONS)}")

    project = _section(raw, "project", label, problems)
    cfg = Config(path=path, raw=raw)
    for key in project:
        if key not in PROJECT_KEYS:
            problems.append(
                f"{label}: unknown key '{key}' in [project]{_suggest(key, list(PROJECT_KEYS))}"
            )
    for key in ("name", "reports_dir", "notebooks", "currency"):
        if key in project and (not isinstance(project[key], str) or not project[key].strip()):
            problems.append(
                f'{label}: [project] {key} = {project[key]!r} must be text in quotes, e.g. {key} = "'
                + {"name": "Acme Analytics", "currency": "EUR"}.get(key, "reports")
                + '"'
            )
    cfg.project_name = str(project.get("name", cfg.project_name))
    if "as_of" in project and project["as_of"] not in ("", None):
        try:
            cfg.as_of = parse_date(project["as_of"], f"{label} [project] as_of")
        except ConfigError as exc:
            problems.append(str(exc))
    cfg.reports_dir = base / str(project.get("reports_dir", "reports"))
    if isinstance(project.get("currency"), str) and project["currency"].strip():
        cfg.currency = currency_symbol(project["currency"])
    cfg.exchange_rates = _exchange_rates(project, cfg, label, problems)
    if isinstance(project.get("notebooks"), str) and project["notebooks"].strip():
        cfg.notebooks_dir = base / project["notebooks"]

    tables = raw.get("tables", {}) or {}
    if not isinstance(tables, dict):
        problems.append(f"{label}: [tables] must be a table of tables such as [tables.accounts]")
        tables = {}
    lookups: dict[str, tuple[str, str]] = {}
    # Keys named by every account_id_from, valid or not: their mappings are not reported as
    # unknown columns on top of the lookup's own problem.
    claimed = _lookups(tables, label, problems, lookups)
    for name, spec in tables.items():
        if name not in TABLES:
            problems.append(
                f"{label}: unknown table [tables.{name}]{_suggest(name, TABLES)} "
                f"(known tables: {', '.join(TABLES)})"
            )
            continue
        keys = {key for source, (target, key) in claimed.items() if name in (source, target)}
        try:
            cfg.tables[name] = _table_config(name, spec, base, label, keys)
        except ConfigError as exc:
            problems.extend(exc.problems)
    for source, (target, key) in lookups.items():
        if source in cfg.tables and target in cfg.tables:
            problems.extend(_lookup_problems(cfg, source, target, key, label))
    cfg.warehouse = _warehouse(raw, base, label, problems)
    for name, tc in cfg.tables.items():
        if tc.from_database and cfg.warehouse is None:
            key = "table" if tc.table is not None else "sql"
            problems.append(
                f"{label} [tables.{name}]: {key} = ... reads from a database, but there is no "
                '[warehouse] section; add [warehouse] with url = "..." (e.g. '
                'url = "duckdb:///crm.duckdb" or "postgresql://user:${PGPASSWORD}@host/db")'
            )
    if "accounts" not in cfg.tables and not problems:
        problems.append(
            f"{label}: no [tables.accounts] section; the accounts export is required "
            '(add [tables.accounts] with path = "...")'
        )

    attributes = _section(raw, "attributes", label, problems)
    for key in attributes:
        if key not in ATTRIBUTE_KEYS:
            problems.append(
                f"{label}: unknown key '{key}' in [attributes]{_suggest(key, list(ATTRIBUTE_KEYS))}"
            )
    lists = {}
    separators: dict[str, str | None] = {}
    multi = attributes.get("multi_select")
    if isinstance(multi, dict):
        # { "Technologies" = ", ", "Tools Used" = ";" }: the separator of each column.
        for name, separator in multi.items():
            if not isinstance(separator, str) or not separator.strip():
                problems.append(
                    f"{label}: [attributes] multi_select: '{name}' = {separator!r} must be the "
                    'separator between its values, e.g. { "Technologies" = "," }'
                )
                continue
            separators[name] = separator.strip()
        attributes = {**attributes, "multi_select": list(separators)}
    for key in ATTRIBUTE_KEYS:
        if key in attributes:
            lists[key] = _text_list(
                attributes[key], f"{label}: [attributes] {key}", problems, '["industry", "crm"]'
            )
    accounts_tc = cfg.tables.get("accounts")
    lists = {key: _attribute_names(names, accounts_tc) for key, names in lists.items()}
    if "categorical" in lists:
        cfg.categorical = lists["categorical"]
    if "numeric" in lists:
        cfg.numeric = lists["numeric"]
    cfg.exclude = lists.get("exclude", [])
    cfg.keep = lists.get("keep", [])
    cfg.contract = lists.get("contract", [])
    listed = attributes.get("multi_select") if "multi_select" in lists else []
    cfg.multi_select = {
        _attribute_names([str(source)], accounts_tc)[0]: separators.get(str(source))
        for source in listed
    }
    cfg.single_select = lists.get("single_select", [])
    for name in sorted(set(cfg.multi_select) & set(cfg.single_select)):
        problems.append(
            f"{label}: [attributes] '{name}' is listed as both multi_select and single_select; "
            "keep it in one"
        )
    for name in sorted(set(cfg.categorical or []) & set(cfg.numeric or [])):
        problems.append(
            f"{label}: [attributes] '{name}' is listed as both categorical and numeric; keep it in one"
        )
    for name in (cfg.categorical or []) + (cfg.numeric or []):
        if name in ("account_id", "name", "created_at"):
            problems.append(
                f"{label}: [attributes] '{name}' cannot be a predictor (it is the account's "
                f"{'key' if name == 'account_id' else 'name' if name == 'name' else 'creation date'}); "
                "remove it from [attributes]"
            )

    for section, target, defaults in (
        ("analysis", cfg.analysis, ANALYSIS_DEFAULTS),
        ("segments", cfg.segments, SEGMENT_DEFAULTS),
        ("scoring", cfg.scoring, SCORING_DEFAULTS),
    ):
        for key, value in _section(raw, section, label, problems).items():
            if key not in defaults:
                problems.append(
                    f"{label}: unknown key '{key}' in [{section}]{_suggest(key, defaults)}"
                )
                continue
            target[key] = value
    problems.extend(_check_analysis(cfg, label))
    codebook = _section(raw, "codebook", label, problems)
    from icp_research.methods.codebook import codebook_problems

    problems.extend(codebook_problems(codebook, label))
    cfg.codebook = dict(codebook) if isinstance(codebook, dict) else {}
    labels = _section(raw, "labels", label, problems)
    cfg.labels, cfg.value_labels = _labels(labels, label, problems)

    if problems:
        raise ConfigError(problems[0], problems)
    return cfg


def _warehouse(raw: dict, base: Path, label: str, problems: list[str]) -> WarehouseConfig | None:
    """``[warehouse] url = "..."``, checked as written (secrets are read only when used)."""
    from icp_research.data.database import url_problem

    if "warehouse" not in raw:
        return None
    section = _section(raw, "warehouse", label, problems)
    for key in section:
        if key not in WAREHOUSE_KEYS:
            problems.append(
                f"{label}: unknown key '{key}' in [warehouse]{_suggest(key, WAREHOUSE_KEYS)} "
                '(it takes url = "...")'
            )
    if "url" not in section:
        problems.append(
            f'{label}: [warehouse] needs url = "..." (e.g. "duckdb:///crm.duckdb" or '
            '"postgresql://user:${PGPASSWORD}@host:5432/db")'
        )
        return None
    problem = url_problem(section["url"], f"{label} [warehouse]")
    if problem:
        problems.append(problem)
        return None
    return WarehouseConfig(url=section["url"].strip(), base_dir=base, label=label)


def _labels(section: dict, label: str, problems: list[str]) -> tuple[dict, dict]:
    """``[labels]``: ``column = "Label"``; ``[labels.values.<column>]``: ``"value" = "Label"``."""
    columns: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    for key, value in section.items():
        if key == "values" and isinstance(value, dict):
            for column, mapping in value.items():
                if not isinstance(mapping, dict):
                    problems.append(
                        f"{label}: [labels.values] {column} = {mapping!r} must be a section: "
                        f'write [labels.values.{column}] and "value" = "label" lines below it'
                    )
                    continue
                for raw_value, text in mapping.items():
                    if isinstance(text, str) and text.strip():
                        values.setdefault(str(column), {})[str(raw_value)] = text.strip()
                    else:
                        problems.append(
                            f"{label}: [labels.values.{column}] {raw_value!r} = {text!r} must be "
                            'text in quotes, e.g. "None" = "no CRM"'
                        )
        elif isinstance(value, str) and value.strip():
            columns[str(key)] = value.strip()
        else:
            problems.append(
                f"{label}: [labels] {key} = {value!r} must be text in quotes, e.g. "
                f'{key} = "{str(key).replace("_", " ")}"'
            )
    return columns, values


def _check_analysis(cfg: Config, label: str) -> list[str]:
    problems = []
    a = cfg.analysis
    share = a["best_customer_top_share"]
    if not isinstance(share, int | float) or not 0 < share < 1:
        problems.append(
            f"{label}: [analysis] best_customer_top_share = {share!r} must be a fraction between "
            "0 and 1, e.g. 0.2 for the top 20%"
        )
    if a.get("best_customer_ranking", "cohort") not in ("cohort", "all"):
        problems.append(
            f"{label}: [analysis] best_customer_ranking = {a.get('best_customer_ranking')!r}: "
            'use "cohort" (the top share of each start year\'s customers) or "all"'
        )
    metrics = ("arr", "clv", "nrr", "tenure", "expansion", "realised_revenue")
    if a["best_customer_metric"] not in metrics:
        problems.append(
            f"{label}: [analysis] best_customer_metric = {a['best_customer_metric']!r} is not one "
            f"of {', '.join(metrics)}"
        )
    alpha = a["alpha"]
    if not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        problems.append(
            f"{label}: [analysis] alpha = {alpha!r} must be between 0 and 0.5, e.g. 0.05"
        )
    if str(a["correction"]).lower() not in ("fdr_bh", "bh", "holm", "bonferroni", "fdr_by"):
        problems.append(
            f"{label}: [analysis] correction = {a['correction']!r}; use fdr_bh (Benjamini-Hochberg), "
            "holm or bonferroni"
        )
    for key, check, wanted in (
        ("min_level_count", lambda v: _is_int(v) and v >= 1, "a whole number of accounts, e.g. 10"),
        (
            "min_support",
            lambda v: _is_number(v) and 0 < v < 1,
            "a fraction between 0 and 1, e.g. 0.03",
        ),
        ("max_depth", lambda v: _is_int(v) and 1 <= v <= 5, "a whole number from 1 to 5, e.g. 3"),
        ("early_churn_months", lambda v: _is_int(v) and v >= 1, "a whole number of months, e.g. 6"),
        ("holdout_quarters", lambda v: _is_int(v) and v >= 0, "a whole number of quarters, e.g. 2"),
        (
            "validation_quarters",
            lambda v: _is_int(v) and v >= 1,
            "a whole number of quarters, at least 1, e.g. 2",
        ),
        ("clv_horizon_years", lambda v: _is_number(v) and v > 0, "a number of years, e.g. 5"),
        (
            "discount_rate",
            lambda v: _is_number(v) and 0 <= v < 1,
            "a yearly rate from 0 up to (not including) 1, e.g. 0.1",
        ),
        ("max_plausible_nrr", lambda v: _is_number(v) and v > 1, "a ratio above 1, e.g. 3.0"),
        ("seed", _is_int, "a whole number, e.g. 42"),
    ):
        if not check(a[key]):
            problems.append(f"{label}: [analysis] {key} = {a[key]!r} must be {wanted}")
    churn_problem = setting_problem(a["churn_source"], label)
    if churn_problem:
        problems.append(churn_problem)
    if not isinstance(a["referral_values"], list) or not all(
        isinstance(v, str) for v in a["referral_values"]
    ):
        problems.append(
            f"{label}: [analysis] referral_values = {a['referral_values']!r} must be a list of "
            'texts, e.g. ["referral", "word of mouth"]'
        )
    bounds = cfg.segments.get("employees", [])
    labels = cfg.segments.get("labels", [])
    if not isinstance(bounds, list) or not all(_is_number(b) for b in bounds):
        problems.append(
            f"{label}: [segments] employees = {bounds!r} must be a list of employee counts, "
            "e.g. [200, 2000]"
        )
        bounds = []
    elif any(b >= c for b, c in zip(bounds, bounds[1:], strict=False)):
        problems.append(
            f"{label}: [segments] employees = {bounds!r} must be increasing, e.g. [200, 2000]"
        )
    if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
        problems.append(
            f"{label}: [segments] labels = {labels!r} must be a list of names, "
            'e.g. ["SMB", "Mid-market", "Enterprise"]'
        )
    elif len(labels) != len(bounds) + 1:
        problems.append(
            f"{label}: [segments] needs one more label than employee bounds "
            f"({len(bounds)} bounds, {len(labels)} labels)"
        )
    tiers = cfg.scoring.get("tiers", {})
    if (
        not isinstance(tiers, dict)
        or not tiers
        or not all(_is_number(v) and 0 <= v <= 100 for v in tiers.values())
    ):
        problems.append(
            f"{label}: [scoring] tiers = {tiers!r} must be a table of minimum scores from 0 to 100 "
            'like {"Tier 1" = 70, "Tier 2" = 40, "Tier 3" = 0}'
        )
    if cfg.scoring.get("outcome") not in (None, "won", "retained", "best_customer"):
        problems.append(
            f"{label}: [scoring] outcome = {cfg.scoring.get('outcome')!r}; use won, retained or best_customer"
        )
    return problems


def _known_encoding(value) -> bool:
    import codecs

    if not isinstance(value, str):
        return False
    try:
        codecs.lookup(value)
    except LookupError:
        return False
    return True


_LOOKUP = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")


def _lookups(
    tables: dict, label: str, problems: list[str], lookups: dict
) -> dict[str, tuple[str, str]]:
    """Fill ``lookups`` with {table: (other table, key)} of every valid ``account_id_from =
    "<table>.<key>"``; return the same of every one that names a table and a key."""
    claimed = {}
    for name, spec in tables.items():
        if not isinstance(spec, dict) or "account_id_from" not in spec or name not in TABLES:
            continue
        where = f"{label} [tables.{name}]"
        value = spec["account_id_from"]
        match = _LOOKUP.match(value) if isinstance(value, str) else None
        if match is None:
            problems.append(
                f"{where}: account_id_from = {value!r} must name a table and its key column, "
                'e.g. account_id_from = "subscriptions.subscription_id"'
            )
            continue
        target, key = match.group(1), match.group(2)
        close = difflib.get_close_matches(target, list(TABLES), n=1, cutoff=0.6)
        claimed[name] = (target if target in TABLES or not close else close[0], key)
        if name == "accounts":
            problems.append(
                f"{where}: account_id_from cannot be used on accounts (they hold account_id "
                "itself); remove it"
            )
        elif target not in TABLES:
            problems.append(
                f"{where}: account_id_from = {value!r} names an unknown table "
                f"'{target}'{_suggest(target, TABLES)} (known tables: {', '.join(TABLES)})"
            )
        elif target == name or TABLES[target].column("account_id") is None:
            problems.append(
                f"{where}: account_id_from = {value!r} must name another table that maps "
                'account_id, e.g. "subscriptions.subscription_id" or "accounts.name"; to use '
                f"account_id from this file, map account_id under [tables.{name}.columns] "
                "instead"
            )
        elif target not in tables:
            problems.append(
                f"{where}: account_id_from = {value!r} looks account_id up in {target}, but "
                f"there is no [tables.{target}]; add it (with {key} and account_id mapped)"
            )
        elif key == "account_id":
            problems.append(
                f"{where}: account_id_from = {value!r} must name the key shared with {target} "
                f'(e.g. "{target}.{_example_key(target)}"), not account_id itself'
            )
        else:
            lookups[name] = (target, key)
    return claimed


def _example_key(table: str) -> str:
    return "opportunity_id" if table == "opportunities" else table.rstrip("s") + "_id"


def _lookup_problems(cfg: Config, source: str, target: str, key: str, label: str) -> list[str]:
    """A lookup's tables must both hold the key, and the other table its own account_id."""
    problems = []
    where = f"{label} [tables.{source}]"
    wanted = f'account_id_from = "{target}.{key}"'
    source_tc, target_tc = cfg.tables[source], cfg.tables[target]
    by_name = target == "accounts"  # account_id where given, the name where it is missing
    if ("account_id" in source_tc.columns and not by_name) or "account_id" in source_tc.constants:
        problems.append(
            f"{where}: both account_id and {wanted} are set; keep one (remove account_id "
            f"under [tables.{source}.columns] to look it up through {target})"
        )
    if source_tc.engine == "duckdb":
        problems.append(
            f'{where}: {wanted} needs the rows in memory; remove engine = "duckdb" or write '
            "account_id into the Parquet files"
        )
    for tc in (source_tc, target_tc):
        if key not in tc.columns and TABLES[tc.name].column(key) is None:
            problems.append(
                f'{where}: {wanted} needs {key} mapped in both tables: add {key} = "<column>" '
                f"under [tables.{tc.name}.columns]"
            )
    if target_tc.account_id_from is not None:
        problems.append(
            f"{where}: {wanted} looks account_id up in {target}, which looks up its own "
            f"account_id; map account_id under [tables.{target}.columns] (one step only)"
        )
    return problems


#: A table's own key, mapped by users for completeness: read only for a lookup through it.
_OWN_KEY = {"subscriptions": "subscription_id"}


def _lost_when(value, name: str, where: str, problems: list) -> dict[str, tuple[str, ...]]:
    """``lost_when = { "Active" = "False" }``: source column -> the texts (casefolded) that
    make a deal lost; a list gives several (``{ "Status" = ["Archived", "Lost"] }``)."""
    if value is None:
        return {}
    example = 'lost_when = { "Active" = "False" }'
    if name != "opportunities":
        problems.append(f"{where}: lost_when is for [tables.opportunities]; remove it here")
        return {}
    if not isinstance(value, dict) or not value:
        problems.append(
            f"{where}: lost_when = {value!r} must name a column and the value that makes a "
            f"deal lost, e.g. {example}"
        )
        return {}
    found = {}
    for column, texts in value.items():
        texts = texts if isinstance(texts, list) else [texts]
        if not texts or not all(isinstance(t, (str, bool, int)) for t in texts):
            problems.append(
                f"{where}: lost_when: {column} = {value[column]!r} must be a value or a list "
                f"of values, e.g. {example}"
            )
            continue
        found[str(column)] = tuple(str(t).strip().casefold() for t in texts)
    return found


def _table_config(
    name: str, spec, base: Path, label: str, lookup_keys: set[str] | frozenset = frozenset()
) -> TableConfig:
    where = f"{label} [tables.{name}]"
    if not isinstance(spec, dict):
        raise ConfigError(f'{where} must be a table with at least path = "..."')
    problems = []
    for key in spec:
        if key not in TABLE_KEYS:
            problems.append(f"{where}: unknown key '{key}'{_suggest(key, TABLE_KEYS)}")
    before = len(problems)
    database = _database_source(spec, where, problems)
    if "path" not in spec and database is None:
        if len(problems) == before:  # not a table = / sql = that has a problem of its own
            problems.append(
                f'{where}: missing path = "..." (the export file, relative to {label}), or '
                'table = "schema.name" / sql = "select ..." to read it from the [warehouse]'
            )
        raise ConfigError(problems[0], problems)
    if database is not None:
        return _database_table(name, spec, database, where, label, lookup_keys, problems)
    if not isinstance(spec["path"], str) or not spec["path"].strip():
        problems.append(
            f"{where}: path = {spec['path']!r} must be the export file name in quotes, e.g. "
            f'path = "exports/{name}.csv"'
        )
        raise ConfigError(problems[0], problems)
    for key, ok, wanted in (
        (
            "date_format",
            lambda v: (
                _date_pattern(v)
                or (isinstance(v, list) and bool(v) and all(_date_pattern(p) for p in v))
            ),
            'a strftime pattern, e.g. "%d/%m/%Y", "unix" or "unix_ms" (seconds or milliseconds '
            'since 1970), "ISO8601", or a list of them tried in order, e.g. ["%d/%m/%Y %H:%M", '
            '"%d/%m/%Y"]',
        ),
        (
            "sheet",
            lambda v: isinstance(v, str) or _is_int(v),
            'a sheet name, e.g. "Sheet1", or its number from 0',
        ),
        (
            "header_row",
            lambda v: _is_int(v) and 1 <= v <= 1000,
            "the row number of the column names, from 1 (e.g. 3 when two title rows come first)",
        ),
        (
            "delimiter",
            lambda v: isinstance(v, str) and len(v) == 1,
            'one character, e.g. ";" or "\\t"',
        ),
        ("encoding", _known_encoding, 'an encoding name, e.g. "latin-1", "cp1252" or "utf-16"'),
        ("decimal", lambda v: v in (".", ","), '"." or ","'),
        ("keep_unmapped", lambda v: isinstance(v, bool), "true or false (no quotes)"),
        ("keep_deleted", lambda v: isinstance(v, bool), "true or false (no quotes)"),
        ("line_items", lambda v: isinstance(v, bool), "true or false (no quotes)"),
        ("rollup", lambda v: isinstance(v, bool), "true or false (no quotes)"),
        ("history", lambda v: isinstance(v, bool), "true or false (no quotes)"),
        ("invoices", lambda v: isinstance(v, bool), "true or false (no quotes)"),
        ("movements", lambda v: isinstance(v, bool), "true or false (no quotes)"),
        ("cents", lambda v: isinstance(v, bool), "true or false (no quotes)"),
        ("price_per_seat", lambda v: isinstance(v, bool), "true or false (no quotes)"),
        (
            "columns",
            lambda v: isinstance(v, dict),
            f'a section [tables.{name}.columns] of canonical = "source column"',
        ),
        ("values", lambda v: isinstance(v, dict), f"sections like [tables.{name}.values.industry]"),
    ):
        if key in spec and not ok(spec[key]):
            problems.append(f"{where}: {key} = {spec[key]!r} must be {wanted}")
    if not any(p.startswith(f"{where}: date_format =") for p in problems):
        _check_date_patterns(spec.get("date_format"), where, problems)
    for key in ("missing_values", "drop"):
        if key in spec:
            _text_list(
                spec[key],
                f"{where}: {key}",
                problems,
                '["-1", "n/a"]' if key == "missing_values" else '["Notes"]',
            )
    lost_when = _lost_when(spec.get("lost_when"), name, where, problems)
    group_column = spec.get("group_column")
    if group_column is not None and not (isinstance(group_column, str) and group_column.strip()):
        problems.append(
            f"{where}: group_column = {group_column!r} must name the column that gets each "
            'row\'s group, e.g. group_column = "Group"'
        )
        group_column = None
    if spec.get("invoices") is True and name != "subscriptions":
        problems.append(
            f"{where}: invoices = true is for [tables.subscriptions] (invoices read as "
            "subscriptions); remove it here"
        )
    if spec.get("movements") is True and name != "subscriptions":
        problems.append(
            f"{where}: movements = true is for [tables.subscriptions] (changes of recurring "
            "revenue read as subscriptions); remove it here"
        )
    if spec.get("movements") is True and spec.get("invoices") is True:
        problems.append(
            f"{where}: movements = true and invoices = true: a row is either a change of "
            "revenue or an invoice; keep one"
        )
    if spec.get("history") is True and name != "opportunities":
        problems.append(
            f"{where}: history = true is for [tables.opportunities] (an opportunity-history "
            "export: one row per deal and stage change); remove it here"
        )
    if spec.get("rollup") is True and name != "accounts":
        problems.append(
            f"{where}: rollup = true is for [tables.accounts] (a file with several rows per "
            "account, such as a deals report with the company's fields on every row); remove "
            "it here"
        )
    if spec.get("line_items") is True and name != "opportunities":
        problems.append(
            f"{where}: line_items = true is for [tables.opportunities] (order lines rolled up "
            "into one deal per opportunity_id); remove it here"
        )
    if problems:
        raise ConfigError(problems[0], problems)
    try:
        path = Path(spec["path"]).expanduser()
    except RuntimeError:  # "~name" of a user this machine does not have
        raise ConfigError(
            f"{where}: path = {spec['path']!r} starts with '~' but names no home folder on this "
            "machine; write the path relative to icp.toml or in full"
        ) from None
    if not path.is_absolute():
        path = base / path
    suffixes = [s.lower() for s in path.suffixes]
    fmt = spec.get("format")
    engine = spec.get("engine", "pandas")
    if engine not in ENGINES:
        problems.append(f'{where}: engine = {engine!r}; use "pandas" (default) or "duckdb"')
    elif engine == "duckdb":
        if name != "usage":
            problems.append(
                f'{where}: engine = "duckdb" is only for [tables.usage] (the table that '
                "outgrows memory); remove it here"
            )
        if fmt not in (None, "parquet"):
            problems.append(f'{where}: engine = "duckdb" reads Parquet; remove format = {fmt!r}')
        fmt = "parquet"
        for key in PANDAS_ONLY_KEYS:
            if key in spec:
                problems.append(
                    f'{where}: {key} is not used with engine = "duckdb" (it reads typed '
                    "Parquet columns as they are); remove it"
                )
    if fmt is None:
        fmt = FORMATS.get(suffixes[-1] if suffixes else "")
        if fmt is None:
            problems.append(
                f"{where}: cannot tell the format of '{path.name}' from its extension; add "
                'format = "csv" (or "parquet", "excel")'
            )
            fmt = "csv"
    elif fmt not in ("csv", "parquet", "excel"):
        problems.append(f"{where}: format = {fmt!r}; use csv, parquet or excel")

    columns = spec.get("columns", {}) or {}
    table = TABLES[name]
    known = {c.name for c in table.columns}
    if name == "accounts":
        known = known | {"arr", "mrr"}
    mapped: dict[str, str] = {}
    constants: dict[str, str] = {}
    coalesce: dict[str, tuple[str, ...]] = {}
    ignored: list[str] = []
    for canonical, source in columns.items():
        if isinstance(source, dict):
            constant = _constant(canonical, source, table, f"{where}.columns", problems)
            if constant is not None:
                constants[canonical] = constant
            continue
        if (
            isinstance(source, list)
            and len(source) >= 2
            and all(isinstance(s, str) and s for s in source)
        ):
            # Several source columns, the first filled one per row (Pipedrive's "Won time" and
            # "Lost time" are one closed_at).
            coalesce[canonical] = tuple(source)
            source = " | ".join(source)
        if not isinstance(source, str):
            problems.append(
                f"{where}.columns: {canonical} = {source!r} must be the source column name in "
                f'quotes, {{ value = "..." }} for the same value on every row, or a list of '
                'columns whose first filled one is used, e.g. ["Won time", "Lost time"]'
            )
            continue
        if canonical in lookup_keys and canonical not in known:
            mapped[canonical] = source
            continue
        if canonical not in known and not table.open_attributes:
            if canonical == _OWN_KEY.get(name):
                # The table's own key (Maxio's "Subscription ID"), which nothing reads unless
                # another table looks its account up through it: read by nothing, said nothing.
                ignored.append(source)
                continue
            if canonical.endswith("_id"):
                # A key such as subscription_id: mapped only for a lookup through it.
                problems.append(
                    f"{where}.columns: '{canonical}' is mapped only when another table looks "
                    f'its account up through it (account_id_from = "{name}.{canonical}" under '
                    "that table, e.g. usage keyed by subscription); remove the line otherwise "
                    f"(columns of {name}: {', '.join(sorted(known))})"
                )
                continue
            problems.append(
                f"{where}.columns: '{canonical}' is not a column of {name}"
                f"{_suggest(canonical, known)} (columns: {', '.join(sorted(known))})"
            )
            continue
        if table.open_attributes and not re.fullmatch(r"[a-z][a-z0-9_]*", canonical):
            problems.append(
                f"{where}.columns: attribute name '{canonical}' must be snake_case "
                "(lower-case letters, digits and _), e.g. uses_sso"
            )
            continue
        mapped[canonical] = source

    if constants and engine == "duckdb":
        problems.append(
            f'{where}.columns: {{ value = ... }} is not read with engine = "duckdb" (it reads '
            "the Parquet columns as they are); map a source column instead"
        )
    values = {}
    for canonical, recode in (spec.get("values", {}) or {}).items():
        if not isinstance(recode, dict):
            problems.append(
                f'{where}.values.{canonical} must be a table of "source value" = "canonical value"'
            )
            continue
        values[canonical] = {
            str(k): (None if v in ("", None) else str(v)) for k, v in recode.items()
        }
    stage_map = values.get("stage", {})
    for source_value, target in stage_map.items():
        if target not in ("won", "lost", "open", "drop"):
            problems.append(
                f'{where}.values.stage: "{source_value}" = "{target}"; stages map to won, lost or '
                'open, or "drop" to leave those deals out'
            )

    sheet = spec.get("sheet")
    missing = tuple(str(v) for v in spec.get("missing_values", []))
    drop = tuple(str(v) for v in spec.get("drop", [])) + tuple(ignored)
    if problems:
        raise ConfigError(problems[0], problems)
    return TableConfig(
        name=name,
        path=path,
        format=fmt,
        columns=mapped,
        values=values,
        date_format=(
            tuple(spec["date_format"])
            if isinstance(spec.get("date_format"), list)
            else spec.get("date_format")
        ),
        sheet=sheet,
        header_row=int(spec.get("header_row", 1)) if _is_int(spec.get("header_row", 1)) else 1,
        delimiter=spec.get("delimiter"),
        encoding=spec.get("encoding"),
        decimal=str(spec.get("decimal", ".")),
        missing_values=missing,
        keep_unmapped=bool(spec.get("keep_unmapped", True)),
        keep_deleted=bool(spec.get("keep_deleted", False)),
        drop=drop,
        engine=engine if engine in ENGINES else "pandas",
        constants=constants,
        coalesce=coalesce,
        line_items=spec.get("line_items") is True,
        rollup=spec.get("rollup") is True,
        history=spec.get("history") is True,
        invoices=spec.get("invoices") is True,
        movements=spec.get("movements") is True,
        cents=spec["cents"] if isinstance(spec.get("cents"), bool) else None,
        lost_when=lost_when,
        group_column=group_column,
        price_per_seat=spec.get("price_per_seat") is True,
        account_id_from=_lookup_of(spec.get("account_id_from")),
        lookup_keys=tuple(sorted(k for k in lookup_keys if k not in known)),
    )


def _database_source(spec: dict, where: str, problems: list[str]) -> tuple[str, str] | None:
    """("table", name) or ("sql", query) when the table comes from the database; None for a
    file. Problems: both keys, a path as well, a name that is not a table name, an empty query."""
    from icp_research.data.database import TABLE_NAME

    given = [key for key in ("table", "sql") if key in spec]
    if not given:
        return None
    if len(given) == 2:
        problems.append(f"{where}: give table = ... or sql = ..., not both")
        return None
    key = given[0]
    value = spec[key]
    if "path" in spec:
        problems.append(
            f"{where}: give path = ... (a file) or {key} = ... (the database), not both"
        )
        return None
    if key == "table" and not (isinstance(value, str) and TABLE_NAME.match(value.strip())):
        problems.append(
            f"{where}: table = {value!r} must be a table name such as "
            '"salesforce.opportunity" (schema.name; for anything else write sql = "select ...")'
        )
        return None
    if key == "sql" and not (isinstance(value, str) and value.strip().rstrip(";").strip()):
        problems.append(
            f'{where}: sql = {value!r} must be a query in quotes, e.g. sql = "select * from '
            'crm.accounts" (use triple quotes for several lines)'
        )
        return None
    return key, value.strip()


def _date_pattern(value) -> bool:
    """A date_format entry: a strftime pattern, or "unix" / "unix_ms" for epoch numbers,
    "ISO8601" for any ISO 8601 date or date-time."""
    return isinstance(value, str) and ("%" in value or value in ("unix", "unix_ms", "ISO8601"))


def _check_date_patterns(value, where: str, problems: list[str]) -> None:
    """A pattern pandas cannot compile ("%d/%m/%Y%") is a config mistake, found before any
    file is read rather than as an error in the middle of parsing."""
    if not value:
        return
    import pandas as pd

    patterns = [value] if isinstance(value, str) else value
    for pattern in patterns:
        if pattern in ("unix", "unix_ms"):  # seconds / milliseconds since 1970
            continue
        try:
            # "* %b %d, %Y": a date after other text (the pattern is what follows "* ").
            bare = pattern[2:] if isinstance(pattern, str) and pattern.startswith("* ") else pattern
            pd.to_datetime(pd.Series(["2024-01-31"]), format=bare, errors="coerce")
        except (ValueError, TypeError) as exc:
            reason = re.sub(r" in format '.*'$", "", str(exc).splitlines()[0] if str(exc) else "")
            reason = re.sub(r"^'(.*)' is a bad directive$", r"%\1 is not a date code", reason)
            shown = (
                f'"{pattern}"'
                if isinstance(value, str)
                else "[" + ", ".join(f'"{p}"' for p in patterns) + f']: "{pattern}"'
            )
            problems.append(
                f"{where}: date_format = {shown} is not a valid date pattern ({reason}); fix: "
                'write it with strftime codes, e.g. "%d/%m/%Y %H:%M" (%d day, %m month, %Y '
                "year, %H:%M time; a literal % is %%)"
            )
            return


def _database_table(
    name: str,
    spec: dict,
    source: tuple[str, str],
    where: str,
    label: str,
    lookup_keys,
    problems: list[str],
) -> TableConfig:
    """A table read from the [warehouse] database: a file's settings (sheet, delimiter ...) do
    not apply; the mapping, recodes and checks are those of a file."""
    for key in FILE_ONLY_KEYS:
        if key in spec:
            problems.append(
                f"{where}: {key} is a setting of export files; remove it (the rows of "
                f"{source[0]} = ... come typed from the database)"
            )
    if problems:
        raise ConfigError(problems[0], problems)
    # The same checks and mapping as a file, on a stand-in path (a name nothing opens).
    stand_in = {k: v for k, v in spec.items() if k not in ("table", "sql")}
    stand_in["path"] = f"{name}.parquet"
    tc = _table_config(name, stand_in, Path("."), label, lookup_keys)
    tc.path, tc.format = None, "database"
    tc.table, tc.sql = (source[1], None) if source[0] == "table" else (None, source[1])
    return tc


def _lookup_of(value) -> tuple[str, str] | None:
    match = _LOOKUP.match(value) if isinstance(value, str) else None
    return (match.group(1), match.group(2)) if match else None


def _constant(canonical: str, spec: dict, table, where: str, problems: list[str]) -> str | None:
    """``stage = { value = "won" }``: the text every row of the column gets."""
    example = f'{canonical} = {{ value = "{"won" if canonical == "stage" else "..."}" }}'
    if set(spec) != {"value"}:
        unknown = sorted(str(k) for k in set(spec) - {"value"})
        problems.append(
            f"{where}: {canonical} = {spec!r} must be the source column name in quotes, or a "
            f"value for every row written {example}"
            + (f" (unknown key '{unknown[0]}'{_suggest(unknown[0], ['value'])})" if unknown else "")
        )
        return None
    value = spec["value"]
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        value = value.isoformat()
    if not (isinstance(value, str | bool) or _is_number(value)) or str(value).strip() == "":
        problems.append(
            f"{where}: {canonical} = {{ value = {value!r} }} must hold one text, number, date "
            f"or true/false, e.g. {example}"
        )
        return None
    column = table.column(canonical)
    if column is not None and column.kind == "id":
        problems.append(
            f"{where}: {canonical} cannot be the same on every row (it is a key); map it to a "
            f'source column, e.g. {canonical} = "{canonical.replace("_", " ").title()}"'
        )
        return None
    known = {c.name for c in table.columns} | (
        {"arr", "mrr"} if table.name == "accounts" else set()
    )
    if column is None and canonical not in known and not table.open_attributes:
        problems.append(
            f"{where}: '{canonical}' is not a column of {table.name}"
            f"{_suggest(canonical, known)} (columns: {', '.join(sorted(known))})"
        )
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
