"""Telling a right text decoding from a wrong one.

A file decoded with the wrong 8-bit encoding does not fail: every byte means some character,
so "San José" saved on a Mac (Mac-Roman) and read as Windows-1252 becomes "San JosŽ" without
an error. :func:`mojibake_count` counts the patterns such a wrong decoding leaves behind, and
:func:`rank_encodings` tries the usual export encodings on the bytes and ranks those that decode
them by how few patterns they leave.
"""

from __future__ import annotations

import re

#: Encodings tried on an export, most likely first (ties keep this order).
CANDIDATES = ("utf-8", "cp1252", "mac_roman", "latin-1")

MOJIBAKE = re.compile(
    "|".join(
        (
            # UTF-8 read as Windows-1252 / Latin-1: "Ã©" (é), "Ã¼" (ü), "â€™" (’), "Â " (nbsp).
            "Ã[\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u2122]",
            "â€[\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u2122]",
            "Â[\u00a0-\u00bf]",
            # Mac-Roman read as Windows-1252: "JosŽ" (é), "MŸller" (ü), "Mu–oz" (ñ).
            "(?<=[a-z])[\u0152\u0160\u0178\u017d]",
            "(?<=[A-Za-z])[\u0152\u0160\u0178\u017d](?=[a-z])",
            "(?<=[A-Za-z])[\u0192\u201a\u201e\u2020\u2021\u02c6\u2030\u2039\u203a\u02dc\u2122"
            "\u2022\u20ac\u2013\u2014\u201d](?=[a-z])",
            # Windows-1252 read as Mac-Roman: "JosÈ" (é), "M¸ller" (ü).
            "(?<=[a-z])[\u00c0-\u00de](?=[a-z\\s]|$)",
            "(?<=[A-Z])[\u00c0-\u00de](?=[a-z])",
            "(?<=[a-z])[\u00b7\u00b8\u00a1\u00f7](?=[a-z])",
            # Bytes no text encoding maps to a character: C1 controls, the replacement character.
            "[\u0080-\u009f\ufffd]",
        )
    )
)


def mojibake_count(text: str) -> int:
    """How many places of ``text`` look like a wrong decoding (0 for plain ASCII)."""
    if not text or text.isascii():
        return 0
    return sum(1 for _ in MOJIBAKE.finditer(text))


def mojibake_example(text: str) -> str | None:
    """The first word of ``text`` that looks wrongly decoded, or None."""
    if not text or text.isascii():
        return None
    match = MOJIBAKE.search(text)
    if match is None:
        return None
    start = max(text.rfind(" ", 0, match.start()) + 1, match.start() - 20)
    end = text.find(" ", match.end())
    end = min(len(text) if end < 0 else end, match.end() + 20)
    return text[start:end].strip()


def rank_encodings(raw: bytes, candidates=CANDIDATES) -> list[tuple[str, int]]:
    """``[(encoding, marks)]`` of the candidates that decode ``raw``, fewest marks first."""
    ranked = []
    for order, encoding in enumerate(candidates):
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        ranked.append((mojibake_count(text), order, encoding))
    return [(encoding, marks) for marks, _, encoding in sorted(ranked)]


def clean_encodings(raw: bytes, candidates=CANDIDATES) -> list[str]:
    """The candidates that decode ``raw`` with no sign of a wrong decoding, best first."""
    return [encoding for encoding, marks in rank_encodings(raw, candidates) if marks == 0]


#: Encodings of exports in other scripts, with the characters their text is written in: the
#: first that decodes a file into its own script is the file's (Japanese before Chinese: kana
#: are Japanese only; Cyrillic only when whole words are, not an accent here and there).
SCRIPT_ENCODINGS = (
    (
        "cp932",
        "Japanese (Shift-JIS)",
        "[\u3040-\u30ff]",
        "[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]",
    ),
    (
        "euc_kr",
        "Korean (EUC-KR)",
        "[\uac00-\ud7af]",
        "[\u3000-\u303f\uac00-\ud7af\u4e00-\u9fff\uff00-\uffef]",
    ),
    ("gbk", "Chinese (GBK)", "[\u4e00-\u9fff]", "[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"),
    ("big5", "Chinese (Big5)", "[\u4e00-\u9fff]", "[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"),
    (
        "cp1251",
        "Cyrillic (Windows-1251)",
        "[\u0400-\u04ff]",
        "[\u0400-\u04ff\u00ab\u00bb\u2013\u2014\u2116]",
    ),
)


def script_encoding(raw: bytes, sample: int = 1 << 20) -> tuple[str, str] | None:
    """``(encoding, language)`` when ``raw`` is text in another script than the Latin one in
    one of :data:`SCRIPT_ENCODINGS` (a Japanese CRM's Shift-JIS export), else None.

    The encoding must decode the bytes without error, 95% or more of the characters outside
    ASCII must be of its script, with its own marks among them (kana for Japanese, except in a
    file of kanji only without half-width katakana), and (for Cyrillic) a third of the letters
    must be: a Western file read as Windows-1251 has a Cyrillic letter here and there
    ("Josй"), never whole words.
    """
    head = raw[:sample]
    if sample < len(raw):
        head = head[: head.rfind(b"\n") + 1] or head
    for encoding, language, marks, script in SCRIPT_ENCODINGS:
        try:
            text = head.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        wide = [c for c in text if ord(c) > 127 and not c.isspace()]
        if len(wide) < 10:
            continue
        # Japanese written in kanji only (headers such as 会社ID, 開始日) is Shift-JIS still
        # when no half-width katakana appear, which Chinese GBK bytes read as cp932 give.
        if not re.search(marks, text) and (
            encoding != "cp932" or re.search("[\uff61-\uff9f]", text)
        ):
            continue
        inside = sum(1 for c in wide if re.match(script, c))
        if inside < 0.95 * len(wide):
            continue
        if encoding == "cp1251":
            letters = sum(1 for c in text if c.isalpha())
            if inside < letters / 3:
                continue
        return encoding, language
    return None


def same_encoding(a: str | None, b: str | None) -> bool:
    import codecs

    try:
        return codecs.lookup(a or "utf-8").name == codecs.lookup(b or "utf-8").name
    except LookupError:
        return False
