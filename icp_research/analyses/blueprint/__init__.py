"""The ICP blueprint: a named ICP, fit rules with their evidence, a fit score and its proof.

:func:`build_blueprint` turns the evidence of the other analyses into what the seeds say
go-to-market teams use, for the report ``notebooks/05_icp_blueprint.ipynb``:

1. **Characteristics** -- the 3-5 that define the ICP are the predictors that were significant,
   held up in the latest quarters and kept an effect of their own
   (:func:`icp_research.analyses.significance.predictor_significance`). Firmographic and
   technographic ones are *filters* (who the company is); how an account came to us
   (``referral_source``) is a *signal* (it prioritises, it does not define).
2. **Rules**, in the format of :class:`icp_research.analyses.antipatterns.Condition`, so that one
   :func:`icp_research.scoring.model.rule_hits` applies every rule to accounts or leads:

   - *include*: one per characteristic, its favoured levels (categories) or the range of a
     numeric attribute where the outcome rate is highest (scanned over nice cut points on the
     training period, e.g. ``100 <= employees < 1,000``);
   - *exclude*: the anti-patterns of the churn and lost-deal analyses and the levels the
     significance analysis says to avoid, re-tested against the accounts the include rules do
     not already rule out (an exclude rule must add to them) on the training period, and
     re-tested on the latest quarters;
   - *uncertain* ("needs more discovery"): findings that were suggestive but not significant,
     significant but did not hold up (or could not be checked) in the latest quarters.

   Every rule carries its evidence per outcome: rows and accounts, the outcome rate in and
   outside the rule, the lift with its interval (clustered by account for deals; exact Poisson
   for churn), the p- and q-value (Benjamini-Hochberg over the rule family) on the training
   period, the same on the holdout, and whether it replicated (one-sided, Holm-corrected).
3. **A statement** in the seeds' template, "This product fits [company type] that needs [core
   workflow outcome] and has [integration/process conditions]", with the not-a-fit list; the
   need comes from survey answers that ICP customers give more often, or else from the
   config's own ``[codebook]`` themes that best customers mention more often; without either
   the need is left out and a caveat says what to add. Attributes and values read as words
   ("companies with no CRM", not ``crm = None``). The analyst can override it.
4. **A fit score** (:func:`icp_research.scoring.scorecard.fit_scorecard`) learned from the chosen
   outcome on the training period, tiers from ``[scoring] tiers`` (or shares of the training
   rows), **validated** on the latest ``holdout_quarters``: AUC with interval, calibration,
   outcome rate / retention / ACV per tier, Tier 1 vs the last tier and ICP vs non-ICP ratios,
   and a walk-forward **backtest**: for each recent quarter, a score fitted on what was known at
   its start ranks the accounts known then against what happened in the quarter.
5. **Segment ICPs** (SMB / Mid-market / Enterprise) only when the include rules work
   significantly differently by size segment and the segments have enough customers.

The machine-readable result is ``artifacts/icp.json`` (:meth:`Blueprint.to_json`), read by
``icp-research score`` (:func:`icp_research.scoring.model.score_file`) and the run dashboard; the
report also writes ``artifacts/icp_rules.csv`` (one row per rule and outcome measured, columns
:data:`RULE_COLUMNS`) and the printable ``artifacts/icp_onepager.html``
(:func:`onepager_html`). Nothing here depends on the demo's planted truth.

``artifacts/icp.json``, field by field
--------------------------------------
``format``
    1; readers refuse other versions.
``kit_version``, ``project``, ``as_of``
    The kit that wrote it, the project name and the analysis date (YYYY-MM-DD).
``name``
    A short name for the ICP ("Mid-size SaaS & FinTech on HubSpot / Salesforce"), null when
    no ICP could be drawn.
``statement``
    The ICP in one paragraph (template sentence, signals, not-a-fit list); when no ICP can be
    drawn, a sentence that says so and why. ``statement_drafted`` is the drafted version and
    ``statement_source`` says whether ``statement`` is ``drafted`` or came from the ``analyst``.
``drawn``
    True when at least one defining include rule exists.
``confidence``
    ``level`` (``high`` / ``moderate`` / ``low`` / ``none``) and ``reason`` (one sentence with
    the numbers it rests on).
``outcome``
    What "success" means for the rules' evidence and the fit score: ``name`` (``won``,
    ``retained``, ``best_customer``), ``definition``, ``unit`` (``deals`` / ``customers``),
    ``split_on`` (the date that places a row in time), ``holdout_from`` (first day of the
    holdout), ``holdout_quarters``, ``n_training``, ``n_holdout``; ``chosen`` (a sentence) when
    ``[scoring] outcome`` is not set and the outcome was chosen from the data.
``characteristics[]``
    The defining characteristics, strongest first: ``rank``, ``attribute``, ``kind``
    (``categorical`` / ``numeric``), ``role`` (``filter``: who the company is; ``signal``: how
    it came to us), ``favour`` / ``avoid`` (levels or bins), ``outcomes`` (those it held up
    for), ``rule`` (the include rule's text), ``evidence`` (one sentence).
``rules``
    ``include``, ``exclude`` and ``uncertain`` lists. Each rule: ``id``; ``kind``; ``text``
    (``industry in {FinTech, SaaS}``); ``conditions[]`` (``attribute``, ``operator`` -- one of
    ``equals``, ``in``, ``less_than``, ``at_least``, ``between`` (``[lower, upper)``),
    ``is_missing`` -- and ``value``; all must hold); include rules have ``role``
    (``filter`` / ``signal``); uncertain rules have ``direction`` (``favour`` / ``avoid``) and
    ``reason`` (why it is uncertain); ``sources`` (the analyses that proposed it);
    ``share_of_accounts`` (accounts meeting it); ``evidence[]``, one per outcome: ``outcome``,
    ``unit``, ``source``, ``rate_unit`` (``share`` or ``per customer-year``), ``compared_with``
    (the rows the rule is compared with), ``n`` and ``accounts`` in the rule and ``n_rest``,
    ``events``, ``rate_in``, ``rate_out``, ``lift`` (rate_in / rate_out) with ``ci_low`` /
    ``ci_high``, ``p_value``, ``q_value`` (Benjamini-Hochberg over the family of the rule
    kind), all on the training period; ``holdout`` (the same on the latest quarters, one-sided
    ``p_value`` and Holm-corrected ``p_adjusted``; null when there are no holdout rows);
    ``replicated`` (true / false / null when it could not be checked); ``replicated_upstream``
    (present when the analysis that proposed the rule confirmed it on the latest quarters
    against all other rows); ``statement`` (in words). ``notes`` lists candidate rules that
    were set aside and why (overlapping an include rule, already left out by it, a channel
    rather than a filter, redundant with a stronger exclude rule).
``attributes``
    How scorers read each attribute the rules or the score use: ``type`` (``numeric`` /
    ``categorical``) and, for numbers, ``nonnegative`` (negative values are treated as missing).
``scorecard``
    The points table (see :mod:`icp_research.scoring.model` for every field): points per level or
    bin, neutral points, bins, the log-odds scale; null when no fit score could be fitted.
``tiers[]``
    ``name`` and ``min_score``, best first; the last tier starts at 0.
``validation``
    The holdout proof: ``outcome``, ``holdout_n``, ``holdout_events``, ``auc`` with ``auc_ci``
    and ``auc_interval`` (cluster bootstrap for deals, DeLong for customers); ``tiers[]`` (per
    tier: ``n``, ``share``, ``events``, ``rate`` with ``ci_low`` / ``ci_high``, value columns
    ``value_mean`` etc. for ACV of won deals); ``ratios[]`` (Tier 1 vs the last tier and Tier 1
    vs the rest: ``rate_a``, ``rate_b``, ``ratio``, ``ci_low``, ``ci_high``); ``icp_vs_rest``
    (accounts meeting every defining include rule and no exclude rule vs the rest, per
    outcome measured: ``outcome``, ``n_icp``, ``rate_icp``, ``n_rest``, ``rate_rest``,
    ``ratio``, ``ci_low``, ``ci_high``); ``retention_by_tier`` (the same tier table for
    12-month retention, when measured); ``calibration[]`` (score groups: ``n``, observed
    ``rate`` with interval, ``predicted_rate``); ``backtest[]`` (per quarter and tier:
    ``quarter``, ``scored_as_of``, ``tier``, ``n``, ``events``, ``rate``, ``ci_low``,
    ``ci_high``, ``value``) and ``backtest_summary[]`` (per quarter: ``n``, ``events``,
    ``auc``, ``auc_low``, ``auc_high``, ``top_vs_bottom`` with interval); ``findings`` and
    ``caveats``. Empty when there is no fit score.
``segments``
    ``verdict`` (one sentence), ``drawn`` (per-segment ICPs drawn or not), ``table[]`` (per
    size segment: ``segment``, ``accounts``, ``customers``, ``rows`` of the outcome, ``rate``,
    and ``lifts`` {include rule: ``lift``, ``ci_low``, ``ci_high``, ``n``} within it) and
    ``icps`` ({segment: [include rules that clearly help there]}) when drawn.
``pmf``
    Product-market-fit indicators where the data has them: ``referral_share[]`` (``group``:
    all customers / new customers of the last four quarters, ``n``, ``referred``, ``share``
    with ``ci_low`` / ``ci_high``), ``threshold`` (0.3, the seeds' test), ``verdict``, and
    ``by_tier[]`` (``customers``, ``referred_share`` with interval, ``nps_n``, ``nps_mean``
    with interval, ``promoters``: share answering 9-10).
``headline``
    Display strings for the run dashboard, e.g. ``{"ICP": "...", "Holdout AUC": "0.67
    (0.64-0.70)", "Tier 1 vs Tier 3 win rate": "3.3x"}``.
``caveats``
    Warnings that travel with the blueprint.

The modules, each importing only from those listed before it
------------------------------------------------------------
``text``
    Shared formatters: percentages, lists in words, JSON-plain values, outcome words.
``upstream``
    What the other analyses found (read from the run's artifacts or computed).
``samples``
    Each outcome's rows, split in time into the training period and the holdout.
``evidence``
    A rule's rate against the rest on both periods: lift, p, q, replication.
``conditions``
    Level labels as conditions, comparing conditions, the best numeric range.
``rules``
    :class:`Rule` and the include, exclude and uncertain rules.
``statement``
    The ICP in words, the need it meets, the not-a-fit list.
``validation``
    Tiers, fitting and validating the fit score, ICP vs the rest, the backtest.
``segments``
    Per-segment ICPs.
``result``
    :class:`Blueprint` and ``icp.json``.
``findings``
    Confidence, headline, findings and caveats.
``market``
    Product-market-fit indicators and market sizing.
``plots``, ``onepager``, ``export``
    Figures, the printable one-pager, the artifacts.
``build``
    :func:`build_blueprint`, which runs the steps above.
"""

from __future__ import annotations

from icp_research.analyses.blueprint.build import MAX_UNCERTAIN, build_blueprint
from icp_research.analyses.blueprint.calibration import (
    FitScoreCalibration,
    calibrate_fit_score,
    plot_reliability,
)
from icp_research.analyses.blueprint.conditions import level_condition
from icp_research.analyses.blueprint.export import RULE_COLUMNS, rules_frame, save_artifacts
from icp_research.analyses.blueprint.market import (
    PMF_REFERRAL_SHARE,
    crm_prospects,
    crm_prospects_label,
    market_sizing,
    pmf_indicators,
    pmf_table,
    sizing_table,
    sizing_tiers_table,
)
from icp_research.analyses.blueprint.onepager import onepager_html, write_onepager
from icp_research.analyses.blueprint.pipeline import pipeline_tables
from icp_research.analyses.blueprint.plots import plot_backtest, plot_rule_lifts, plot_scorecard
from icp_research.analyses.blueprint.result import FORMAT, Blueprint
from icp_research.analyses.blueprint.rules import CHANNEL_ATTRIBUTES, Rule
from icp_research.analyses.blueprint.samples import OUTCOMES
from icp_research.analyses.blueprint.upstream import Upstream, upstream_evidence
from icp_research.analyses.blueprint.validation import tier_spec

__all__ = [
    "CHANNEL_ATTRIBUTES",
    "FORMAT",
    "MAX_UNCERTAIN",
    "OUTCOMES",
    "PMF_REFERRAL_SHARE",
    "RULE_COLUMNS",
    "Blueprint",
    "FitScoreCalibration",
    "Rule",
    "Upstream",
    "build_blueprint",
    "crm_prospects",
    "crm_prospects_label",
    "level_condition",
    "market_sizing",
    "onepager_html",
    "plot_backtest",
    "plot_rule_lifts",
    "plot_scorecard",
    "pmf_indicators",
    "pmf_table",
    "rules_frame",
    "save_artifacts",
    "sizing_table",
    "sizing_tiers_table",
    "tier_spec",
    "upstream_evidence",
    "write_onepager",
    "calibrate_fit_score",
    "pipeline_tables",
    "plot_reliability",
]
