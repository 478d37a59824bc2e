r"""Coding free text into themes with a transparent, configurable codebook.

Churn feedback, loss notes and call notes are read by plain rules, not by a model: a codebook
maps each theme to keywords, phrases and regular expressions, and a text carries every theme one
of whose rules matches (themes overlap: "too expensive, and no one owned it" is both *pricing*
and *no owner*). Texts no rule matches are *uncoded*; the report counts and samples them so the
codebook can be improved.

Matching rules
--------------
Texts and keywords are normalised the same way before matching: Unicode NFKC (full-width
letters, ligatures), case folding (``"Straße"`` -> ``"strasse"``), accents on Latin letters
removed (``"revisión"`` -> ``"revision"``), and every run of punctuation or white space made a
single space (``"sign-off!"`` -> ``"sign off"``, ``"don't"`` -> ``"don t"``). So matching
ignores case, punctuation and accents.

- A **keyword or phrase** matches whole words: ``"price"`` matches "Price!" and "the price
  increase" but not "priceless" or "prices". A ``*`` matches the rest of a word:
  ``"pric*"`` matches price, prices, pricing and pricey (and priceless).
- Words in scripts written without spaces (Chinese, Japanese, Korean, Thai) match anywhere in
  the text: ``"価格"`` matches "価格が高すぎる". Normalisation puts a space around each run of
  such characters, so ``"revops"`` still matches "専任のRevOps担当者".
- ``"regex:<pattern>"`` is a Python regular expression searched in the *normalised* text
  (lower case, no accents, punctuation turned into spaces, a space around runs of unspaced
  scripts), case-insensitively. Write it in lower case and without punctuation, and in single
  quotes in TOML (no escaping needed there), e.g. ``'regex:\bno budget\b(?! owner)'``.

Configuration (``icp.toml``)
----------------------------
::

    [codebook]
    defaults = true                  # keep the built-in themes (default); false = only yours
    pricing = ["price", "pric*", "expensive", "tarif*"]   # replaces the built-in theme
    "data residency" = ["data residency", "eu hosting", 'regex:\bhosted in (the )?eu\b']
    timing = []                      # an empty list removes a built-in theme

    [codebook.add]                   # extra rules for a theme, keeping its built-in ones
    missing_integration = ["zapier"]

The built-in themes are :data:`DEFAULT_CODEBOOK`; every report prints the codebook it used.
Rules are keyword lists, so they do not understand negation ("no issues with the price" is
*pricing*) or sarcasm; read the quoted examples before acting on a theme.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from icp_research.errors import ConfigError

REGEX_PREFIX = "regex:"

# Scripts written without spaces between words: word boundaries do not apply to them.
_NO_SPACE_SCRIPTS = (
    "\u0e00-\u0e7f"  # Thai
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\uac00-\ud7af"  # Hangul syllables
)
_NO_SPACE_CHAR = re.compile(f"[{_NO_SPACE_SCRIPTS}]")
_NO_SPACE_RUN = re.compile(f"([{_NO_SPACE_SCRIPTS}]+)")
_GLOBAL_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")
_COMBINING_ACCENTS = re.compile("[\u0300-\u036f]")
_SEPARATORS = re.compile(r"[\W_]+")

# Built-in themes: what B2B SaaS churn feedback, loss notes and call notes most often say.
# English first, then cheap German, Spanish, French and Japanese basics (written as people type
# them; accents are ignored when matching).
DEFAULT_CODEBOOK: dict[str, list[str]] = {
    "pricing": [
        "price", "prices", "priced", "pricing", "pricey", "overpriced", "expensive",
        "too costly", "cheaper", "cheap", "cost too much", "costs too much", "didn't justify",
        "not worth the money", "not worth the cost", "budget too small", "budget too tight",
        "over budget", "out of budget",
        "zu teuer", "teuer", "preis*", "caro", "demasiado caro", "precio*", "trop cher", "prix",
        "tarif*", "価格", "料金", "値段", "高すぎ",
    ],
    "budget_cuts": [
        "budget cut*", "budget freeze", "budget was cut", "budget got cut", "spending freeze",
        "cost-saving", "cost saving*", "cost cutting", "cut costs", "tools cut",
        "no budget this year", "no budget left", "no budget for", "no budget available",
        "no more budget", "lost budget", "lost their budget", "lost our budget",
        "budgetkurzung*", "sparmassnahme*", "recorte* de presupuesto", "sin presupuesto",
        "coupes budgetaires", "pas de budget", "予算削減", "予算カット",
    ],
    "no_decision": [
        "no decision", "no budget owner", "budget owner", "budget holder", "went dark",
        "ghosted", "stalled", "deprioriti*", "no sign-off", "never got sign-off",
        "non-responsive", "unresponsive", "no champion",
        "keine entscheidung", "budgetverantwortlich*", "sin decision", "se estanco",
        "estancad*", "pas de decision", "aucune decision", "決裁者", "意思決定", "保留",
    ],
    "missing_integration": [
        "integration", "integrations", "integrate*", "connector*", "connect*", "no api",
        "manual export*", "manual import*", "csv import*", "by hand", "copied by hand",
        "schnittstelle*", "anbindung", "integracion", "conectar*", "connecteur*", "connecter",
        "連携", "統合", "接続",
    ],
    "no_owner": [
        "no owner", "no internal owner", "lacked an internal owner", "nobody owned",
        "nobody owns", "no one owned", "no one owns", "nobody really owns",
        "no one had time", "no time to run", "no one picked it up", "admin left",
        "champion left", "part-time admin", "low adoption", "adoption is low",
        "no one on our side owned", "nobody on our side owned",
        "no clear owner", "no dedicated owner", "without an owner", "lacked an owner",
        "lack of ownership", "no ownership", "owner left", "nobody used it", "no one used it",
        r"regex:\b(?:niemand|kein\w*)\b(?: \w+){0,5} (?:verantwortlich|zustandig)\b"
        r"|\bnadie\b(?: \w+){0,5} responsable|\b(?:personne|aucun)\b(?: \w+){0,5} responsable",
        "担当者がいな", "担当者不在", "担当不在",
    ],
    "dedicated_owner": [
        "revops", "rev ops", "revenue operations", "sales ops", "sales operations",
        "dedicated owner", "dedicated admin", "dedicated revops", "専任",
    ],
    "security_review": [
        "security review", "security questionnaire", "security assessment", "infosec",
        "soc 2", "soc2", "iso 27001", "pen test", "penetration test", "vendor assessment",
        "compliance review", "gdpr", "dpa",
        "sicherheitsprufung", "datenschutz", "revision de seguridad", "seguridad",
        "revue de securite", "securite", "セキュリティ",
    ],
    "data_quality": [
        "data quality", "bad data", "dirty data", "wrong numbers", "numbers didn't match",
        "didn't match", "don't match", "inaccurate", "duplicate*", "data issues",
        "datenqualitat", "calidad de datos", "calidad de los datos", "qualite des donnees",
        "データ品質", "数字が合わ",
    ],
    "competitor": [
        "competitor*", "switched to", "switched vendor*", "went with", "chose a", "chose the",
        "another vendor", "other vendor", "incumbent", "rival",
        "wettbewerber*", "konkurrenz", "competencia", "competidor*", "concurren*", "競合", "他社",
    ],
    "onboarding": [
        "onboarding", "implementation", "implement*", "never got set up",
        "never got fully set up", "hard to set up", "difficult to set up", "setup took",
        "set up took", "time to value", "ramp-up",
        "einfuhrung", "implementierung", "implementacion", "puesta en marcha", "mise en place",
        "deploiement", "導入", "オンボーディング",
    ],
    "missing_feature": [
        "missing feature*", "needed feature*", "feature request*", "feature gap*",
        "lack* feature*", "features you don't have", "don't support", "doesn't support",
        "not supported", "no support for", "on-prem*", "roadmap",
        "missing functionality", "missing capabilit*", "missing support", "missing option*",
        "missing multi*", "missing report*", "missing module*", "is missing", "are missing",
        "fehlende funktion*", "funktion fehlt", "falta* funcionalidad*",
        "fonctionnalite* manquante*", "機能不足", "機能がな",
    ],
    "poor_fit": [
        "didn't fit", "doesn't fit", "not a fit", "poor fit", "bad fit", "product fit",
        "not a good fit", "wrong tool", "not what we needed",
        "passt nicht", "no encaja", "pas adapte", "合わなかった",
    ],
    "timing": [
        "timing", "bad timing", "not a priority", "next year", "next quarter", "revisit",
        "reorg*", "hiring freeze",
        "falscher zeitpunkt", "no es prioridad", "pas une priorite", "時期",
    ],
    "acquired": [
        "acquired", "acquisition", "merger", "merged", "parent company", "consolidat*",
        "ubernommen", "ubernahme", "adquirid*", "fusion", "rachat", "rachete*", "買収",
    ],
}  # fmt: skip

THEME_LABELS = {
    "pricing": "pricing / value",
    "budget_cuts": "budget cuts",
    "no_decision": "no decision / no budget owner",
    "missing_integration": "missing integration",
    "no_owner": "no internal owner",
    "dedicated_owner": "dedicated owner (RevOps / Sales Ops)",
    "security_review": "security review",
    "data_quality": "data quality",
    "competitor": "switched to a competitor",
    "onboarding": "onboarding / implementation",
    "missing_feature": "missing feature",
    "poor_fit": "poor product fit",
    "timing": "timing",
    "acquired": "acquired / consolidated",
}


def theme_label(theme: str) -> str:
    """The display name of a theme ('missing_integration' -> 'missing integration')."""
    return THEME_LABELS.get(theme, str(theme).replace("_", " "))


# ---------------------------------------------------------------------------------------------
# Normalisation


def normalise_text(texts) -> pd.Series:
    """Texts as the codebook sees them: NFKC, case-folded, no accents, punctuation -> space.

    Returns a ``string`` Series aligned with ``texts``; missing values stay missing and blank
    texts become ``""``.
    """
    series = pd.Series(texts, copy=False)
    # Work on distinct texts only: notes repeat (templates, copy-paste).
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    clean = np.array([_normalise_one(str(u)) for u in uniques] + [""], dtype=object)
    out = pd.Series(clean[np.where(codes >= 0, codes, len(uniques))], index=series.index)
    out = out.astype("string")
    out[codes < 0] = pd.NA
    return out


def _normalise_one(text: str, strip: bool = True) -> str:
    if text.isascii():  # the common case: no width forms, accents or unspaced scripts
        text = _SEPARATORS.sub(" ", text.lower())
        return text.strip() if strip else text
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _COMBINING_ACCENTS.sub("", unicodedata.normalize("NFD", text))
    text = unicodedata.normalize("NFC", text)
    # Runs of unspaced scripts stand apart from spaced words ("crmとの連携" -> "crm との連携"),
    # so that word boundaries of Latin keywords hold next to them.
    text = _SEPARATORS.sub(" ", _NO_SPACE_RUN.sub(r" \1 ", text))
    return text.strip() if strip else text


def _keyword_parts(keyword: str) -> tuple[str, str, str]:
    """``(left boundary, body, right boundary)`` of a keyword's regex: whole words, ``*`` = the
    rest of a word; no boundary on the side of an unspaced script or a wildcard."""
    pieces = []
    for part in keyword.split("*"):
        words = _normalise_one(part, strip=False)
        pieces.append(" ".join(re.escape(w) for w in words.split(" ")))
    body = re.sub(" +", " ", r"\w*".join(pieces)).strip()
    plain = _normalise_one(keyword.replace("*", " "))
    left = (
        ""
        if not plain or keyword.lstrip().startswith("*") or _NO_SPACE_CHAR.match(plain[0])
        else r"(?<!\w)"
    )
    right = (
        ""
        if not plain or keyword.rstrip().endswith("*") or _NO_SPACE_CHAR.match(plain[-1])
        else r"(?!\w)"
    )
    return left, body, right


def _keyword_regex(keyword: str) -> str:
    """Regex for one keyword or phrase (see :func:`_keyword_parts`)."""
    return "".join(_keyword_parts(keyword))


def _keyword_tokens(keyword: str) -> list[tuple[str, bool]] | None:
    """A keyword as normalised tokens ``(text, is_prefix)``, or None when token lookups cannot
    express it (unspaced scripts, a wildcard inside a word or at the start of a phrase)."""
    plain = _normalise_one(keyword.replace("*", " "))
    if not plain or _NO_SPACE_CHAR.search(plain):
        return None
    tokens = []
    for word in keyword.split():
        stem = word[:-1] if word.endswith("*") else word
        if "*" in stem:
            return None
        parts = _normalise_one(stem).split(" ")
        tokens.extend((part, False) for part in parts[:-1])
        tokens.append((parts[-1], word.endswith("*")))
    if any(not text for text, _ in tokens):
        return None
    return tokens


# ---------------------------------------------------------------------------------------------
# The codebook


def _continues(tokens: list[str], i: int, rest) -> bool:
    """Whether the words after ``tokens[i]`` are ``rest`` (exact words or word prefixes)."""
    if i + len(rest) >= len(tokens):
        return False
    return all(
        tokens[i + 1 + k].startswith(word) if is_prefix else tokens[i + 1 + k] == word
        for k, (word, is_prefix) in enumerate(rest)
    )


class Codebook:
    """Themes and their rules, compiled for fast vectorised matching.

    Parameters
    ----------
    rules : mapping of theme -> list of rules (keywords, phrases, ``"regex:..."`` patterns).

    Raises
    ------
    ConfigError
        When a rule is not a string, is empty, or is an invalid regular expression.
    """

    def __init__(self, rules: Mapping[str, Iterable[str]], *, label: str = "codebook"):
        problems = _rule_problems(rules, label)
        if problems:
            raise ConfigError(problems[0], problems)
        self.rules: dict[str, tuple[str, ...]] = {
            str(theme).strip(): tuple(theme_rules) for theme, theme_rules in rules.items()
        }
        self._compile()

    def _compile(self) -> None:
        """Index the rules for one pass over the texts.

        Normalised texts are words separated by single spaces, so a keyword or phrase matches
        whole words exactly when its words appear in a row: that is a dictionary lookup per
        word of the text, not a regular-expression search per rule. Wildcards at the end of a
        word are prefix checks; keywords in unspaced scripts are substring checks; everything
        else (and every ``regex:`` rule) stays a regular expression, one per theme.
        """
        self._phrases: dict[str, list[tuple[tuple[tuple[str, bool], ...], int]]] = {}
        self._prefixes: list[tuple[str, tuple[tuple[str, bool], ...], int]] = []
        self._substrings: list[tuple[str, int]] = []
        self._regexes: list[tuple[re.Pattern, int]] = []
        for index, theme_rules in enumerate(self.rules.values()):
            branches = []
            for rule in theme_rules:
                if rule.startswith(REGEX_PREFIX):
                    pattern = rule[len(REGEX_PREFIX) :]
                    # Global inline flags must open a pattern, so such a rule stands alone.
                    if _GLOBAL_FLAGS.match(pattern):
                        self._regexes.append((re.compile(pattern, re.IGNORECASE), index))
                    else:
                        branches.append(f"(?:{pattern})")
                    continue
                tokens = _keyword_tokens(rule)
                plain = _normalise_one(rule.replace("*", " "))
                if tokens is not None and tokens[0][1]:
                    self._prefixes.append((tokens[0][0], tuple(tokens[1:]), index))
                elif tokens is not None:
                    rest = tuple(tokens[1:])
                    self._phrases.setdefault(tokens[0][0], []).append((rest, index))
                elif "*" not in rule and _NO_SPACE_CHAR.match(plain) and " " not in plain:
                    self._substrings.append((plain, index))
                else:
                    branches.append(_keyword_regex(rule))
            if branches:
                self._regexes.append((re.compile("|".join(branches), re.IGNORECASE), index))
        self._first_words = frozenset(self._phrases)
        prefixes = sorted({p for p, _, _ in self._prefixes}, key=lambda p: (-len(p), p))
        self._prefix_regex = (
            re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, prefixes)) + ")")
            if prefixes
            else None
        )

    def _themes_of(self, text: str) -> set[int]:
        """Indexes of the themes a normalised text mentions."""
        found: set[int] = set()
        if not text:
            return found
        tokens = text.split(" ")
        starts = self._first_words.intersection(tokens)
        if starts:
            for i, token in enumerate(tokens):
                if token in starts:
                    for rest, index in self._phrases[token]:
                        if index not in found and _continues(tokens, i, rest):
                            found.add(index)
        if self._prefix_regex is not None:
            for match in self._prefix_regex.finditer(text):
                i = text.count(" ", 0, match.start())
                for prefix, rest, index in self._prefixes:
                    if (
                        index not in found
                        and tokens[i].startswith(prefix)
                        and _continues(tokens, i, rest)
                    ):
                        found.add(index)
        if self._substrings and not text.isascii():
            found.update(i for s, i in self._substrings if s in text)
        for pattern, index in self._regexes:
            if index not in found and pattern.search(text):
                found.add(index)
        return found

    def __repr__(self) -> str:
        return f"<Codebook: {len(self.rules)} themes, {sum(map(len, self.rules.values()))} rules>"

    @property
    def themes(self) -> list[str]:
        return list(self.rules)

    def code(self, texts) -> pd.DataFrame:
        """Which themes each text mentions.

        Returns a boolean DataFrame aligned with ``texts``: one column per theme (True where
        one of its rules matches). Missing and blank texts mention nothing.
        """
        series = pd.Series(texts, copy=False)
        return self.code_normalised(normalise_text(series))

    def code_normalised(self, normalised: pd.Series) -> pd.DataFrame:
        """:meth:`code` for texts already passed through :func:`normalise_text` (callers that
        need the normalised texts too save a pass)."""
        series = normalised
        codes, uniques = pd.factorize(normalised, use_na_sentinel=True)
        # One row per distinct text, plus a last row (mentions nothing) for missing texts.
        hits = np.zeros((len(uniques) + 1, len(self.rules)), dtype=bool)
        for row, text in enumerate(uniques):
            for index in self._themes_of(text):
                hits[row, index] = True
        hits = hits[np.where(codes >= 0, codes, len(uniques))]
        coded = {theme: hits[:, k] for k, theme in enumerate(self.rules)}
        return pd.DataFrame(coded, index=series.index, columns=self.themes, dtype=bool)

    def explain(self, text: str) -> dict[str, list[str]]:
        """The rules that match one text, by theme (for checking a rule by hand)."""
        normalised = _normalise_one(text) if isinstance(text, str) else ""
        found: dict[str, list[str]] = {}
        for theme, theme_rules in self.rules.items():
            for rule in theme_rules:
                if rule.startswith(REGEX_PREFIX):
                    pattern = re.compile(rule[len(REGEX_PREFIX) :], re.IGNORECASE)
                else:
                    pattern = re.compile(_keyword_regex(rule))
                if pattern.search(normalised):
                    found.setdefault(theme, []).append(rule)
        return found

    def to_frame(self) -> pd.DataFrame:
        """The codebook as a table: ``theme``, ``label``, ``rules`` (count) and ``examples``."""
        rows = []
        for theme, theme_rules in self.rules.items():
            shown = ", ".join(theme_rules[:12]) + (" …" if len(theme_rules) > 12 else "")
            rows.append(
                {
                    "theme": theme,
                    "label": theme_label(theme),
                    "rules": len(theme_rules),
                    "examples": shown,
                }
            )
        return pd.DataFrame(rows, columns=["theme", "label", "rules", "examples"])

    @classmethod
    def from_config(cls, section: Mapping | None = None, *, label: str = "icp.toml") -> Codebook:
        """The codebook a ``[codebook]`` section asks for (the defaults when it is empty).

        Raises :class:`ConfigError` listing every problem (bad rule, invalid regex, unknown
        theme under ``[codebook.add]``) with the fix.
        """
        problems = codebook_problems(section, label)
        if problems:
            raise ConfigError(problems[0], problems)
        return cls(_merge(section or {}), label=label)


def default_codebook() -> Codebook:
    """The built-in themes (:data:`DEFAULT_CODEBOOK`)."""
    return Codebook(DEFAULT_CODEBOOK)


def _merge(section: Mapping) -> dict[str, list[str]]:
    rules: dict[str, list[str]] = {}
    if section.get("defaults", True):
        rules = {theme: list(r) for theme, r in DEFAULT_CODEBOOK.items()}
    for theme, value in section.items():
        if theme in ("defaults", "add"):
            continue
        theme_rules = [value] if isinstance(value, str) else list(value)
        if theme_rules:
            rules[str(theme).strip()] = theme_rules
        else:
            rules.pop(str(theme).strip(), None)
    for theme, value in (section.get("add") or {}).items():
        extra = [value] if isinstance(value, str) else list(value)
        rules.setdefault(str(theme).strip(), []).extend(extra)
    return rules


def codebook_problems(section: Mapping | None, label: str = "icp.toml") -> list[str]:
    """Everything wrong with a ``[codebook]`` section, each with the fix (empty list = fine)."""
    section = section or {}
    if not isinstance(section, Mapping):
        return [f'{label}: [codebook] must be a table of theme = ["keyword", ...]']
    problems = []
    if not isinstance(section.get("defaults", True), bool):
        problems.append(
            f"{label}: [codebook] defaults = {section['defaults']!r} must be true or false"
        )
    add = section.get("add") or {}
    if not isinstance(add, Mapping):
        problems.append(f'{label}: [codebook.add] must be a table of theme = ["keyword", ...]')
        add = {}
    own = {str(k).strip() for k in section if k not in ("defaults", "add")}
    known = own | (set(DEFAULT_CODEBOOK) if section.get("defaults", True) is not False else set())
    for theme in add:
        if str(theme).strip() not in known:
            close = difflib.get_close_matches(str(theme), sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(
                f"{label}: [codebook.add] adds rules to '{theme}', which is not a theme{hint} "
                "(define it under [codebook] instead)"
            )
    themes = {k: v for k, v in section.items() if k not in ("defaults", "add")}
    problems.extend(_rule_problems(themes, f"{label} [codebook]", allow_empty=True))
    problems.extend(_rule_problems(add, f"{label} [codebook.add]", allow_empty=True))
    return problems


def _rule_problems(rules: Mapping, where: str, allow_empty: bool = False) -> list[str]:
    problems = []
    for theme, value in rules.items():
        if not str(theme).strip():
            problems.append(f"{where}: a theme has an empty name; give it a name")
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            problems.append(
                f'{where}: {theme} = {value!r} must be a list of rules, e.g. ["price", "expensive"]'
            )
            continue
        if not value and not allow_empty:
            problems.append(f"{where}: theme '{theme}' has no rules; give it at least one keyword")
        for rule in value:
            if not isinstance(rule, str):
                problems.append(
                    f"{where}: theme '{theme}': rule {rule!r} must be text in quotes, e.g. \"price\""
                )
                continue
            if rule.startswith(REGEX_PREFIX):
                pattern = rule[len(REGEX_PREFIX) :]
                if not pattern.strip():
                    problems.append(f"{where}: theme '{theme}': empty regex in {rule!r}")
                    continue
                if any(ord(c) < 32 for c in pattern):
                    problems.append(
                        f"{where}: theme '{theme}': {rule!r} contains a control character; in a "
                        'double-quoted TOML string "\\b" is a backspace: write the rule in single '
                        "quotes, e.g. 'regex:\\bprice\\b'"
                    )
                    continue
                try:
                    compiled = re.compile(pattern, re.IGNORECASE)
                except re.error as exc:
                    problems.append(
                        f"{where}: theme '{theme}': {rule!r} is not a valid regular expression "
                        f"({exc}); fix the pattern (TOML strings need \\\\ for a backslash, or "
                        "use single quotes)"
                    )
                    continue
                if compiled.search(""):
                    problems.append(
                        f"{where}: theme '{theme}': {rule!r} matches an empty text, so it would "
                        "code every note; make the pattern require at least one character"
                    )
            elif not _normalise_one(rule.replace("*", " ")):
                problems.append(
                    f"{where}: theme '{theme}': keyword {rule!r} has no letters or digits; "
                    "matching ignores punctuation, so use a regex: rule for symbols"
                )
    return problems


# ---------------------------------------------------------------------------------------------
# Redaction for quotes


# The lookbehind lets a match start only where a run of address characters starts, so one
# megabyte-long token is scanned once, not once per character (linear, not quadratic).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_PHONE = re.compile(r"(?<!\w)\+?\d[\d ()./-]{6,}\d(?!\w)")
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z][\w.-]{1,}")


def redact(texts, max_chars: int = 160) -> pd.Series:
    """Texts safe to quote: e-mails, links, phone numbers and @handles masked, long ones cut.

    Returns a ``string`` Series (missing stays missing). Names of people cannot be found by
    rules; quotes are still reviewed by a person before a report is shared outside the team.
    HTML escaping is the display layer's job (:mod:`icp_research.reporting.display`).
    """
    series = pd.Series(texts, copy=False).astype("string")
    series = series.str.replace(_EMAIL, "[e-mail]", regex=True)
    series = series.str.replace(_URL, "[link]", regex=True)
    series = series.str.replace(_PHONE, "[phone]", regex=True)
    series = series.str.replace(_HANDLE, "[name]", regex=True)
    series = series.str.replace(r"\s+", " ", regex=True).str.strip()
    too_long = series.str.len() > max_chars
    cut = series.str.slice(0, max_chars - 1).str.rstrip() + "…"
    return series.where(~too_long.fillna(False), cut)
