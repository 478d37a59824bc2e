"""The registry of analyses: what each report needs, what it saves and what it reads from others.

One declaration per analysis replaces the string contracts that used to live in notebook cells:
the artifact names an analysis writes (``artifacts/<name>.csv`` / ``.json``, or a document such
as ``.html`` / ``.pptx``) and the ones another analysis reads back are the same
:class:`Artifact` objects, so renaming one renames both. The runner orders and skips the kit's
notebooks from here (a notebook of your own declares the same in its metadata), copies what a
report saves when it reuses the report from its cache, and reads each report's key finding from
the result it saved, not from HTML.

Tables are written twice: ``artifacts/<name>.csv`` for people (formula-like cells neutralised for
spreadsheets) and ``artifacts/tables/<name>.json`` (pandas' table schema, lossless), which is
what the kit reads back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from icp_research.artifacts import Artifact


@dataclass(frozen=True)
class Analysis:
    """One report: its notebook, the tables it needs, what it saves and what it reads.

    ``requires`` lists canonical tables; ``"a|b"`` means either. ``reads`` are artifacts saved by
    other analyses (the runner runs those first).
    """

    name: str
    notebook: str
    title: str
    requires: tuple[str, ...]
    saves: tuple[Artifact, ...] = ()
    reads: tuple[Artifact, ...] = ()
    #: The result file the runner takes the report's key finding from.
    result: Artifact | None = field(default=None)
    #: Typical seconds at 10M deals (measured): a run with no earlier run to time the reports
    #: by starts the longer ones first, so that the lanes end close together (one exception,
    #: for memory: see the predictor significance).
    cost: float = 1.0

    def after(self) -> list[str]:
        """Notebooks whose artifacts this one reads, in reading order."""
        return sorted({ANALYSES_BY_ARTIFACT[a.name].notebook for a in self.reads})


def _table(name: str, description: str) -> Artifact:
    return Artifact(name, "table", description)


def _json(name: str, description: str) -> Artifact:
    return Artifact(name, "json", description)


def result_artifact(analysis: str) -> Artifact:
    """``artifacts/results/<analysis>.json``: the result's findings and caveats, for the runner."""
    return _json(f"results/{analysis}", f"findings and caveats of the {analysis} report")


# --- Artifacts, declared once ---------------------------------------------------------------

OVERVIEW = _json("overview", "data overview: sizes, periods, headline numbers")
DATA_PROBLEMS = _table("data_problems", "every data problem found while loading")

BEST_CUSTOMER_PROFILE = _table("best_customer_profile", "best customers vs the rest, by level")
SUBGROUPS = _table("subgroups", "subgroups that separate best customers, wins, retention")
SEGMENTS = _table("segments", "k-means, Ward and rule segments with their metrics")
SEGMENT_SILHOUETTE = _table("segment_silhouette", "silhouette per number of clusters")

CHURN = _json("churn", "overall churn figures and what could not be computed")
CHURN_BY_ATTRIBUTE = _table("churn_by_attribute", "churn rates per attribute level")
CHURN_REASONS = _table("churn_reasons", "churn reasons with revenue at risk")
RETENTION_CURVES = _table("retention_curves", "Kaplan-Meier retention curves")
CHURN_COX = _table("churn_cox", "Cox model hazard ratios")
ANTI_PATTERNS_CHURN = _table("anti_patterns_churn", "segments that churn faster: exclude rules")

DEALS = _json("deals", "overall win rate and what could not be computed")
WIN_RATE_BY_ATTRIBUTE = _table("win_rate_by_attribute", "win rate per attribute level")
NO_DECISION_BY_ATTRIBUTE = _table("no_decision_by_attribute", "'no decision' share per level")
LOSS_REASONS = _table("loss_reasons", "loss reasons")
SALES_CYCLE_BY_SEGMENT = _table("sales_cycle_by_segment", "sales cycle per segment")
DEAL_SIZE_BY_SEGMENT = _table("deal_size_by_segment", "deal size per segment")
ANTI_PATTERNS_DEALS = _table("anti_patterns_deals", "segments that lose more: exclude rules")

PREDICTORS = _table("predictors", "every predictor test (predictors.csv contract)")
PREDICTOR_SUMMARY = _table("predictor_summary", "one row per attribute and outcome")
ICP_PREDICTORS = _json("icp_predictors", "the recommended ICP characteristics")

ICP = _json("icp", "the ICP: statement, rules, scorecard, tiers, validation")
ICP_RULES = _table("icp_rules", "include / exclude / uncertain rules with their evidence")
EXPECTED_PIPELINE = _table(
    "expected_pipeline",
    "win probabilities summed over closed deals against wins, per validation quarter, and over "
    "the deals open now, by segment and tier",
)
# Documents for people, each with its own writer in the blueprint module.
ICP_ONEPAGER = Artifact("icp_onepager", "html", "the ICP on one printable page")
ICP_SLIDE = Artifact("icp_slide", "pptx", "the ICP on one 16:9 slide (PowerPoint)")

ICP_HEALTH = _table("icp_health", "ICP vs the rest on each health metric")
ICP_DRIFT = _table("icp_drift", "population stability of new customers and pipeline")
HEALTH = _json("health", "the health report's headline and drift")
ICP_CHANGELOG = _json("icp_changelog", "what changed since the previous quarter's ICP")

FEEDBACK_THEMES = _table("feedback_themes", "feedback themes and how often they occur")
THEME_TESTS = _table("theme_tests", "themes that separate churned, lost and best customers")
SURVEY_ANSWERS = _table("survey_answers", "survey answers as attributes")
BUYING_COMMITTEE = _table("buying_committee", "deal roles and win rates")

# --- Analyses ---------------------------------------------------------------------------------

ANALYSES: tuple[Analysis, ...] = (
    Analysis(
        "overview",
        "00_data_overview",
        "Data overview",
        ("accounts",),
        saves=(OVERVIEW, DATA_PROBLEMS),
        cost=15,
    ),
    Analysis(
        "patterns",
        "01_pattern_discovery",
        "Pattern discovery",
        ("opportunities|subscriptions",),
        saves=(BEST_CUSTOMER_PROFILE, SUBGROUPS, SEGMENTS, SEGMENT_SILHOUETTE),
        cost=34,
    ),
    Analysis(
        "churn",
        "02_churn_analysis",
        "Churn analysis",
        ("subscriptions|churn_events",),
        saves=(
            CHURN,
            CHURN_BY_ATTRIBUTE,
            CHURN_REASONS,
            RETENTION_CURVES,
            CHURN_COX,
            ANTI_PATTERNS_CHURN,
        ),
        cost=62,
    ),
    Analysis(
        "deals",
        "03_lost_deal_analysis",
        "Lost-deal analysis",
        ("opportunities",),
        saves=(
            DEALS,
            WIN_RATE_BY_ATTRIBUTE,
            NO_DECISION_BY_ATTRIBUTE,
            LOSS_REASONS,
            SALES_CYCLE_BY_SEGMENT,
            DEAL_SIZE_BY_SEGMENT,
            ANTI_PATTERNS_DEALS,
        ),
        cost=59,
    ),
    Analysis(
        "significance",
        "04_predictor_significance",
        "Predictor significance",
        ("opportunities|subscriptions",),
        saves=(PREDICTORS, PREDICTOR_SUMMARY, ICP_PREDICTORS),
        # It takes 53 s at 10M deals, but starts right after the blueprint, beside its first
        # steps: later, it met the blueprint's samples (a peak of 11,770 MiB for the whole
        # run against 10,657 and 10,759 MiB when it started first).
        cost=123,
    ),
    Analysis(
        "blueprint",
        "05_icp_blueprint",
        "ICP blueprint",
        ("opportunities|subscriptions",),
        saves=(ICP, ICP_RULES, EXPECTED_PIPELINE, ICP_ONEPAGER, ICP_SLIDE),
        # The blueprint computes its own evidence as of the day before its validation quarters
        # (the run's artifacts include those quarters), so it reads no other report and runs
        # beside them, first, as the longest one.
        cost=292,
    ),
    Analysis(
        "health",
        "06_icp_health",
        "ICP health",
        ("opportunities|subscriptions",),
        saves=(ICP_HEALTH, ICP_DRIFT, HEALTH, ICP_CHANGELOG),
        reads=(ICP,),
        cost=33,
    ),
    Analysis(
        "voc",
        "07_voice_of_customer",
        "Voice of the customer",
        ("feedback|survey|deal_roles|churn_events",),
        saves=(FEEDBACK_THEMES, THEME_TESTS, SURVEY_ANSWERS, BUYING_COMMITTEE),
        cost=1,
    ),
)

ANALYSES_BY_NAME = {a.name: a for a in ANALYSES}
ANALYSES_BY_NOTEBOOK = {a.notebook: a for a in ANALYSES}
ANALYSES_BY_ARTIFACT = {artifact.name: a for a in ANALYSES for artifact in a.saves}


def analysis(name: str) -> Analysis:
    """The registered analysis called ``name`` (or whose notebook is ``name``)."""
    found = ANALYSES_BY_NAME.get(name) or ANALYSES_BY_NOTEBOOK.get(name)
    if found is None:
        known = ", ".join(a.name for a in ANALYSES)
        raise KeyError(f"no analysis called {name!r}; known: {known}")
    return found
