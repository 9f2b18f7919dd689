"""Grounding: every number, date and verdict in an answer must be backed by a specific field of a
tool result of the conversation (or by the user's own question).

``check_grounding(answer, sources, question)`` returns a ``GroundingReport``. ``sources`` are the
tool calls of the whole conversation (``{"tool", "args", "result"}`` dicts, earlier turns first),
so a follow-up may repeat a figure computed one turn earlier.

How a number is matched (all of these must hold for one field):

- **Value at the written precision.** A number written with ``d`` decimals matches a field within
  half a unit of its last digit (``|field - shown| <= 0.5 * 10**-d``); an integer with trailing
  zeros and at least two significant digits is read as rounded to its last non-zero digit
  (13,388 -> "13,390"), and a k/M/B suffix or the words thousand/million/billion scale the value
  and the tolerance alike (13,388 -> "13.388k", 2,000,000 -> "$2m"). No percentage band: a figure
  1% off is unsupported unless the written precision covers it.
- **Unit.** A number followed by ``bps``/``bp``/``basis points`` matches a ``*_bps`` field, a
  ``*_pct`` field x100, or a fraction (|x| <= 1) x10,000; one followed by ``%``/``percent``
  matches a ``*_pct`` field, a ``*_bps`` field /100 (12.4 bps -> "0.124%"), or a fraction x100
  (R² 0.722 -> "72.2%"). A number without a unit matches a field's value as stored.
- **Sign.** A signed number (+0.28, -2.20) must have the field's sign; an unsigned number matches
  a non-negative field, or a negative one only where the text states the sign in words ("a loss
  of 6,467").
- **Venue and instrument.** A number in a sentence (or a line's later sentences) that names a
  venue or a pair must match a field of that venue's/pair's entry (a compare row, a route child,
  a health line), or a field that belongs to no venue (the order size, the HHI).
- **Field.** The words next to the number name the field ("spread", "slippage", "fee", "VWAP",
  "imbalance", "z-score", "p-value", "hedge ratio", "R²", "bid", "ask", ...): when there is such a
  label the field's name (or, for a figure inside a result's text, that text's words) must carry
  it, and among the fields in scope of a compatible unit the number must match one that carries
  the most of those words (the best-named field): a fee of 5 bps does not back "slippage 5 bps",
  the Huber hedge ratio does not back "1.03 (OLS", the z-score window does not back "z-score now
  48". A parenthesis restating the figure before it ("42.8 BTC bid (2,638,807 USDT)") and the
  second figure of a list ("fees 10.00 and 5.00 bps") take that figure's labels; "2 of 6 venues"
  labels the part and the whole.

Numbers inside text copied from a result (a fee source, a reason) are backed by that text when it
appears verbatim in a sentence about the same venue. Numbers written in words ("ten", "five
hundred", "five-percent") are read as numbers. Dates are matched to result timestamps at the
written precision, in ISO form ("2024-08-09T00:05:05.809Z", "2024-08-09 00:05 UTC") or with a
month name ("Aug 9, 2024", "9 August 2024 00:05").

Verdicts are checked against the field that decides them: the best venue ("Best: X", "X is the
cheapest") against ``best_venue``/``best_single_venue``; "no arbitrage" / "arbitrage opportunity"
/ "profitable" against ``arbitrage_opportunities``; "a loss/profit of" against ``pnl_quote``;
"(not) stationary" against ``adf.rejects_unit_root_5pct``; "(not) cointegrated" against
``coint.cointegrated_5pct``; "enough liquidity" / "can absorb" / "cannot fill" / a leading "Yes:"
or "No:" against ``fully_filled`` of the venue named. A venue named in the answer must appear in a
tool result or the question.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, Field

# ----------------------------------------------------------------------------------- report


class UnsupportedItem(BaseModel):
    """One figure or claim of the answer that no tool result backs."""

    text: str = Field(description="the text as written in the answer")
    start: int = Field(description="offset of the text in the checked answer (characters)")
    end: int = Field(description="offset just past the text")
    kind: Literal["number", "date", "claim", "venue"]
    reason: str = Field(description="why it is unsupported")


class GroundingReport(BaseModel):
    """The grounding check of one answer: ``verdict`` ``"grounded"`` when every number, date and
    verdict claim is backed by a tool-result field, else ``"unsupported"``; ``numbers_checked``
    (numbers and dates), ``claims_checked`` (verdicts and venue names) and the ``unsupported``
    items with their spans and reasons."""

    verdict: Literal["grounded", "unsupported"] = "grounded"
    grounded: bool = True
    numbers_checked: int = 0
    claims_checked: int = 0
    unsupported: list[UnsupportedItem] = Field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def note(self) -> str:
        """A short note for the end of an answer naming the unsupported items, or ""."""
        if self.grounded:
            return ""
        parts = [f'"{u.text}" ({u.reason})' for u in self.unsupported[:8]]
        more = len(self.unsupported) - 8
        if more > 0:
            parts.append(f"and {more} more")
        return "[Unverified: " + "; ".join(parts) + ".]"


# ------------------------------------------------------------------------------------ facts

_UNIT_WORDS = {
    "bps": "bps",
    "bp": "bps",
    "basis points": "bps",
    "basis point": "bps",
    "%": "pct",
    "percent": "pct",
    "per cent": "pct",
    "pct": "pct",
    "ms": "ms",
    "s": "s",
}

# A label in the text -> substrings one of which the field's name (or its text context) must hold.
_LABELS: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(p, re.I), subs)
    for p, subs in [
        (r"\bspreads?\b", ("spread",)),
        (r"\bslip(?:page|s)?\b", ("slippage",)),
        (r"(?<!incl\. )(?<!incl )\bfees?\b", ("fee", "!incl_fee")),
        (r"\bcosts?\b", ("cost",)),
        (r"\bvwap\b", ("vwap", "!incl_fee")),
        (r"\baverage\b|\bmean\b|\bavg\b", ("avg", "vwap", "mean")),
        (r"\bmedian\b", ("median",)),
        (r"\bmax(?:imum)?\b", ("max", "worst")),
        (r"\bmid\b", ("mid",)),
        (r"^\s*(?:above|below|from) the mid\b", ("slippage", "!vs_best")),
        (r"\bbest\b", ("best",)),
        (r"\bdown to\b|\bworst\b", ("worst",)),
        (r"\bvenues?\b|\bvenue\(s\)", ("venue",)),
        (r"\bpairs?\b|\bpair\(s\)", ("pair",)),
        (r"\bbooks\b|\bbook\(s\)", ("book",)),
        (r"\bquote\b", ("quote", "notional")),
        (r"\bdays?\b", ("day",)),
        (r"\barrival\b", ("arrival",)),
        (r"\breference\b", ("reference",)),
        (r"\bnow\b|\blast\b|\bcurrent\b", ("last", "now")),
        (r"\bpoints?\b|-point\b", ("n_obs", "window")),
        (r"\bperiod\b", ("period",)),
        (r"\bwent from\b|\bfrom\s*\x00", ("first", "start")),
        (r"(?:^|\s)to\s*\x00", ("last", "_end", ".end", "worst")),
        (r"#\s*\x00", (".id", "_id")),
        (r"\bcrunch\b", ("drop", "crunch")),
        (r"\brecover(?:ed|y)?\b", ("recover",)),
        (r"\bprevious\b", ("baseline",)),
        (r"\b(?:buying|selling|buy|sell|filled|fills only|dump|purchase)\b", ("size", "notional", "filled")),
        (r"\x01", ("used", "healthy", "filled", "fired")),  # N of M: the part
        (r"\x02", ("considered", "total", "requested", "available")),  # N of M: the whole
        (r"\bbids?\b", ("bid",)),
        (r"\basks?\b", ("ask",)),
        (r"\bimbalance\b", ("imbalance",)),
        (r"\blevels?\b(?![ ]*[-+−]?[\d\x00])", ("level",)),
        (r"\bwithin\b", ("window", "max_slippage", "threshold")),
        (r"\bhhi\b", ("hhi",)),
        (r"\bz-?scores?\b", ("zscore",)),
        (r"\bp-?values?\b", ("p_value",)),
        (r"\bstatistic\b", ("stat",)),
        (r"\bcritical\b", ("critical",)),
        (r"\bhedge ratio\b|\bbeta\b", ("hedge_ratio",)),
        (r"\bols\b", ("ols",)),
        (r"\bhuber\b", ("huber",)),
        (r"\br²|\br-?squared\b|\br2\b", ("r_squared",)),
        (r"\bcorrelation\b", ("corr",)),
        (r"\bhalf-?life\b", ("half_life",)),
        (r"\bperiods\b", ("periods",)),
        (r"\bhours\b", ("hours",)),
        (r"\bvolatility\b", ("vol",)),
        (r"\bannuali[sz]ed\b", ("annualised",)),
        (r"\bedge\b", ("edge", "!hedge")),
        (r"\bprofit\b|\bloss\b|\bp&l\b", ("pnl", "profit")),
        (r"\bsav(?:es|ings?)\b", ("saving",)),
        (r"\bimpact\b", ("impact",)),
        (r"\bmarket move\b", ("move",)),
        (r"\bthreshold\b|\b(?:above|below)\s*\x00", ("threshold",)),
        (r"\bcooldown\b", ("cooldown",)),
        (r"\breturns\b", ("return",)),
        (r"\bcandles\b", ("candles",)),
        (r"\bintervals?\b", ("interval",)),
        (r"\bobservations?\b", ("observation", "baseline_n")),
        (r"\bgaps\b", ("gaps",)),
        (r"\bresyncs\b", ("resyncs",)),
        (r"\bchecksum\b", ("checksum",)),
        (r"\bupdates applied\b", ("updates_applied",)),
        (r"\bhealthy\b", ("healthy",)),
        (r"\bstandard deviations\b", ("zscore",)),
        (r"\bround trip\b", ("round_trip",)),
        (r"\bincl\.? fees?\b", ("incl_fee",)),
    ]
]

# Where a number's clause ends (labels are looked for within it).
_DELIM = re.compile(r"[;,+()\[\]/]|\band\b|\bthen\b|\.\s+(?=[A-Z])")
# Words that end the label words after a number ("5.75887 BTC at VWAP ...": not a VWAP).
_STOP = re.compile(
    r"\b(?:at|of|from|to|in|over|on|for|with|than|is|are|was|were|would|which|down|up|"
    r"a|an|x|by|into|across|after|before|while)\b",
    re.I,
)

_ISO_DT = re.compile(
    r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?(?:Z|\s?UTC|[+-]00:?00)?(?!\d)"
)
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for m in names
}
_MON = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_TIME = r"(?:,?\s+(?:at\s+)?(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?(?:\s?UTC|Z)?)?"
_DMY = re.compile(rf"\b(\d{{1,2}})\s+{_MON},?\s+(\d{{4}}){_TIME}", re.I)
_MDY = re.compile(rf"\b{_MON}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}}){_TIME}", re.I)

_NUM = re.compile(
    r"(?<![\w.\-−+])(?P<sign>[-+−])?(?P<cur>\$)?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?:e(?P<exp>[-+]?\d+))?"
    r"(?:\s?(?P<suf>k|K|M|bn|B)(?![\w])|(?<=\d)(?P<msuf>m)(?![\w])|\s(?P<wsuf>thousand|million|billion)\b)?"
    r"(?![\w])(?!\.\w)"
)
_NUM_WORD_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_NUM_WORD_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_W = "|".join(list(_NUM_WORD_UNITS) + list(_NUM_WORD_SCALES))
_WORDS = re.compile(rf"(?<![\w-])(?:{_W})(?:(?:[\s-]+|\s+and\s+)(?:{_W}))*(?![\w])", re.I)
_SUFFIX = {
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "m": 1e6,
    "bn": 1e9,
    "B": 1e9,
    "thousand": 1e3,
    "million": 1e6,
    "billion": 1e9,
}
_UNIT_AFTER = re.compile(
    r"\s?(%|bps\b|bp\b|basis points?\b|percent\b|per cent\b|pct\b|-percent\b|ms\b|s\b)", re.I
)
# Identifiers with digits that are not figures (symbols, paths, URLs, tiers: "BTC/USD:BTC-211231",
# "cryptofeed/BYBIT.0.gz", "Lv1", "v2").
_IDENT = re.compile(r"[A-Za-z][\w.\-]*/[\w.\-/:]+|(?<![\w.])[A-Za-z]+\d[\w]*|\b\w+\.\d+\.gz\b")


def _label_key(path: str) -> str:
    """The name a field's labels are matched on: its own name and its parent's (``adf.p_value``),
    not the names of the lists it sits in (a compare row's fields are not all "venues")."""
    parts = path.lower().split(".")
    parent = parts[-2] if len(parts) >= 2 and not parts[-2].endswith("[]") else ""
    return f"{parent}.{parts[-1]}".replace("[]", "").strip(".")


def _unit_of(key: str) -> str:
    k = key.lower()
    if "bps" in k:
        return "bps"
    if k.endswith("pct") or "_pct" in k:
        return "pct"
    if k.endswith("_ms"):
        return "ms"
    if k.endswith("_s"):
        return "s"
    return "plain"


def _labels_in(text: str) -> set[int]:
    return set(_labels_in_cached(text))


@lru_cache(maxsize=16384)
def _labels_in_cached(text: str) -> frozenset[int]:
    return frozenset(i for i, (p, _) in enumerate(_LABELS) if p.search(text))


@dataclass
class _Fact:
    value: float
    unit: str
    key: str  # lower-case field path (and, for a figure inside text, that text's words)
    venues: frozenset[str]
    symbols: frozenset[str]
    turn: int
    mask: int | None = None
    kind: str = "field"  # "field" (a result's value), "text" (a figure inside result text) or "question"


@dataclass
class _DateFact:
    dt: datetime
    venues: frozenset[str]
    symbols: frozenset[str]


@dataclass
class _Text:
    text: str
    venues: frozenset[str]
    symbols: frozenset[str]


@dataclass
class _Flag:
    key: str  # the field name: best_venue, fully_filled, cointegrated_5pct, ...
    value: Any
    venues: frozenset[str]
    symbols: frozenset[str]
    turn: int


@dataclass
class _Facts:
    numbers: list[_Fact] = field(default_factory=list)
    dates: list[_DateFact] = field(default_factory=list)
    texts: list[_Text] = field(default_factory=list)
    flags: list[_Flag] = field(default_factory=list)
    venues: set[str] = field(default_factory=set)
    symbols: set[str] = field(default_factory=set)
    strings: set[str] = field(default_factory=set)  # every string value (lower case)
    last_turn: int = 0
    _index: dict[str, tuple[list[float], list[_Fact]]] | None = None
    _scoped: dict[tuple[frozenset, frozenset], dict] = field(default_factory=dict)
    _by_scope: dict[tuple[frozenset, frozenset], list[_Fact]] | None = None

    _groups: dict[tuple[frozenset, frozenset, str], set[int]] | None = None
    _best: dict[tuple, int] = field(default_factory=dict)
    _scope_masks: dict[tuple, set[int]] = field(default_factory=dict)

    def best_score(self, labels: set[int], seg: _Segment, unit: str = "plain") -> int:
        """The most of ``labels`` any field in the segment's scope carries: a number must match one
        of the fields that carry that many (the best-named field), not merely one that carries one."""
        if self._groups is None:
            self._groups = {}
            for f in self.numbers:
                if f.kind != "field":
                    continue
                self._groups.setdefault((f.venues, f.symbols, f.unit), set()).add(_mask_of(f))
        cache_key = (frozenset(labels), seg.venues, seg.symbols, unit)
        units = _COMPATIBLE_UNITS[unit]
        if cache_key in self._best:
            return self._best[cache_key]
        want = sum(1 << i for i in labels)
        scope_key = (seg.venues, seg.symbols, unit)
        masks = self._scope_masks.get(scope_key)
        if masks is None:  # the distinct label masks of the fields in this scope and unit
            masks = self._scope_masks[scope_key] = {
                m
                for (venues, symbols, f_unit), ms in self._groups.items()
                if f_unit in units and _scope_ok(seg.venues, seg.symbols, venues, symbols)
                for m in ms
            }
        best = max(((m & want).bit_count() for m in masks), default=0)
        self._best[cache_key] = max(best, 1)
        return self._best[cache_key]

    def near(self, n: _Num, negative: bool, seg: _Segment | None = None) -> Iterable[_Fact]:
        """The facts whose value, in one of the conversions ``_candidates`` allows, may be within
        ``n``'s tolerance (a superset; ``_value_ok`` decides); with ``seg``, only the facts in its
        scope (``_scope_ok``), from an index kept per scope (a health answer has ~400 figures over
        a few venues: most facts are another venue's)."""
        if seg is None:
            if self._index is None:
                self._index = self._build_index(self.numbers)
            index = self._index
        else:
            scope = (seg.venues, seg.symbols)
            index = self._scoped.get(scope)
            if index is None:
                if self._by_scope is None:  # facts by their own (venues, symbols): a few dozen groups
                    self._by_scope = {}
                    for f in self.numbers:
                        self._by_scope.setdefault((f.venues, f.symbols), []).append(f)
                index = self._scoped[scope] = self._build_index(
                    [
                        f
                        for (venues, symbols), fs in self._by_scope.items()
                        if _scope_ok(seg.venues, seg.symbols, venues, symbols)
                        for f in fs
                    ]
                )
        yield from self._near_in(index, n, negative)

    @staticmethod
    def _build_index(numbers: list[_Fact]) -> dict[str, tuple[list[float], list[_Fact]]]:
        index = {}
        for unit in ("bps", "pct", "plain", "ms", "s"):
            fs = sorted((f for f in numbers if f.unit == unit), key=lambda f: f.value)
            index[unit] = ([f.value for f in fs], fs)
        return index

    @staticmethod
    def _near_in(
        index: dict[str, tuple[list[float], list[_Fact]]], n: _Num, negative: bool
    ) -> Iterable[_Fact]:
        factors = {
            "bps": {"bps": 1.0, "pct": 100.0, "plain": 1e4},
            "pct": {"pct": 1.0, "bps": 0.01, "plain": 100.0},
            "ms": {"ms": 1.0},
            "s": {"s": 1.0, "ms": 0.001},
        }
        targets = [n.value, -n.value] if negative else [n.value]
        seen: set[int] = set()
        for unit, (values, fs) in index.items():
            fac = [1.0] if n.unit == "plain" else [factors[n.unit][unit]] if unit in factors[n.unit] else []
            for f_ in fac:
                for t in targets:
                    margin = n.tol + 1e-9 * max(1.0, abs(t))
                    lo, hi = (t - margin) / f_, (t + margin) / f_
                    for j in range(bisect_left(values, lo), bisect_right(values, hi)):
                        if id(fs[j]) not in seen:
                            seen.add(id(fs[j]))
                            yield fs[j]


_VENUE_KEYS = ("venue", "buy_venue", "sell_venue", "best_venue", "best_single_venue", "focus_venue")
_FLAG_KEYS = (
    "best_venue",
    "best_single_venue",
    "fully_filled",
    "rejects_unit_root_5pct",
    "cointegrated_5pct",
    "arbitrage_opportunities",
    "pnl_quote",
)


def _parse_iso(s: str) -> datetime | None:
    m = _ISO_DT.fullmatch(s.strip())
    if not m:
        return None
    return _dt_from_groups(m.group(1), m.group(2), m.group(3), *m.group(4, 5, 6, 7))


def _dt_from_groups(y, mo, d, hh=None, mm=None, ss=None, frac=None) -> datetime | None:
    try:
        us = round(float(frac) * 1e6) if frac else 0
        return datetime(
            int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), min(us, 999_999), tzinfo=UTC
        )
    except ValueError:
        return None


def _collect_venues(obj: Any, out: set[str], symbols: set[str]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in _VENUE_KEYS or k in ("venues", "venues_asked", "venues_included", "truncated"):
                for x in v if isinstance(v, list) else [v]:
                    if isinstance(x, str) and x and re.fullmatch(r"[a-z0-9]+", x):
                        out.add(x)
            if k in ("symbol", "symbol_a", "symbol_b") and isinstance(v, str) and "/" in v:
                symbols.add(v)
            _collect_venues(v, out, symbols)
    elif isinstance(obj, list):
        for v in obj:
            _collect_venues(v, out, symbols)


def _walk(obj: Any, path: str, venues: frozenset, symbols: frozenset, turn: int, facts: _Facts) -> None:
    if isinstance(obj, dict):
        v = obj.get("venue")
        if isinstance(v, str) and v:
            venues = frozenset([v])
        pair = [obj.get(k) for k in ("buy_venue", "sell_venue") if isinstance(obj.get(k), str)]
        if pair:
            venues = frozenset(pair)
        s = obj.get("symbol")
        if isinstance(s, str) and "/" in s:
            symbols = frozenset([s])
        for k, val in obj.items():
            k = str(k)
            child_venues = frozenset([k]) if k in facts.venues else venues
            kp = f"{path}.{k}" if path else k
            if k in _FLAG_KEYS:
                flag_value = val
                if k == "arbitrage_opportunities" and isinstance(val, list):
                    flag_value = len(val)
                if not isinstance(val, (dict, list)) or k == "arbitrage_opportunities":
                    facts.flags.append(_Flag(k, flag_value, child_venues, symbols, turn))
            km = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%|bps)?", k)
            if km and not isinstance(val, dict | list):  # "5%": {critical value}: the key is a figure
                unit = "pct" if km.group(2) == "%" else ("bps" if km.group(2) else "plain")
                facts.numbers.append(_Fact(float(km.group(1)), unit, _label_key(kp), venues, symbols, turn))
            _walk(val, kp, child_venues, symbols, turn, facts)
    elif isinstance(obj, list | tuple):
        facts.numbers.append(
            _Fact(float(len(obj)), "plain", _label_key(f"{path}_count"), venues, symbols, turn)
        )
        for v in obj:
            _walk(v, f"{path}[]", venues, symbols, turn, facts)
    elif isinstance(obj, bool) or obj is None:
        return
    elif isinstance(obj, int | float):
        if math.isfinite(obj):
            facts.numbers.append(
                _Fact(float(obj), _unit_of(path.rsplit(".", 1)[-1]), _label_key(path), venues, symbols, turn)
            )
    elif isinstance(obj, str):
        facts.strings.add(obj.lower())
        dt = _parse_iso(obj)
        if dt is not None:
            facts.dates.append(_DateFact(dt, venues, symbols))
            return
        _text_facts(obj, path, venues, symbols, turn, facts)


def _text_facts(text: str, path: str, venues, symbols, turn: int, facts: _Facts) -> None:
    """The figures and dates inside a result's text (a reason, a note, a description)."""
    if not any(c.isdigit() for c in text):
        return
    if len(text) >= 6:
        facts.texts.append(_Text(text, venues, symbols))
    for m in _ISO_DT.finditer(text):
        dt = _dt_from_groups(*m.group(1, 2, 3, 4, 5, 6, 7))
        if dt is not None:
            facts.dates.append(_DateFact(dt, venues, symbols))
    masked = _mask(
        text, [m.span() for m in _ISO_DT.finditer(text)] + [m.span() for m in _IDENT.finditer(text)]
    )
    nums = _numbers(masked)
    whole = _Segment(0, len(masked), frozenset(), frozenset())
    named = (
        [
            (m.start(), m.group())
            for m in re.finditer(r"(?<![\w])[a-z0-9]+(?![\w])", text)
            if m.group() in facts.venues
        ]
        if len(venues) != 1
        else []
    )
    for i, n in enumerate(nums):
        labels, _ = _number_labels(masked, nums, i, whole)
        key = " ".join([_label_key(path)] + [s for j in labels for s in _LABELS[j][1] if s[0] != "!"])
        # A figure inside text belongs to the venue the text names before it (if any), and is
        # scoped by venue only: the text may name other pairs.
        before = [v for pos, v in named if pos < n.start]
        scope = frozenset([before[-1]]) if before else venues
        facts.numbers.append(_Fact(n.value, n.unit, key, scope, frozenset(), turn, kind="text"))


def _facts_of(sources: Iterable[Any], questions: Iterable[str]) -> _Facts:
    facts = _Facts()
    sources = list(sources)
    for s in sources:
        _collect_venues(s, facts.venues, facts.symbols)
    facts.venues |= _known_venues() & _venues_in_strings(sources)
    turn = 0
    for s in sources:
        if isinstance(s, dict) and "turn" in s:
            turn = int(s["turn"])
        facts.last_turn = max(facts.last_turn, turn)
        if isinstance(s, dict) and "result" in s:
            args = s.get("args") or {}
            scope = frozenset([args["venue"]]) if isinstance(args.get("venue"), str) else frozenset()
            _walk(args, "args", scope, frozenset(), turn, facts)
            _walk(s["result"], "", frozenset(), frozenset(), turn, facts)
        else:
            _walk(s, "", frozenset(), frozenset(), turn, facts)
    for q in questions:
        facts.strings.add(q.lower())
        masked = _mask(q, [m.span() for m in _IDENT.finditer(q)])
        nums = _numbers(masked)
        whole = _Segment(0, len(masked), frozenset(), frozenset())
        for i, n in enumerate(nums):
            # A figure the user stated, named by the question's own words ("above 5 bps").
            labels, _ = _number_labels(masked, nums, i, whole)
            key = " ".join(["question"] + [s for j in labels for s in _LABELS[j][1] if s[0] != "!"])
            facts.numbers.append(
                _Fact(n.value, n.unit, key, frozenset(), frozenset(), facts.last_turn, kind="question")
            )
    return facts


def _venues_in_strings(sources: list[Any]) -> set[str]:
    words: set[str] = set()

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                words.add(str(k).lower())
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
        elif isinstance(o, str):
            words.update(re.findall(r"[a-z0-9]+", o.lower()))

    walk(sources)
    return words


def _known_venues() -> frozenset[str]:
    """The venue vocabulary, without ids that are ordinary words: the assistant's own venue names
    (``agent.parser``'s table, which every question is read with), plus ccxt's exchange ids when
    ccxt is already loaded (live mode: any ccxt venue can answer). ccxt is not imported for this:
    a recorded-data ``mlm ask`` never loads it."""
    import sys

    return _venue_vocabulary("ccxt" in sys.modules)


@lru_cache(maxsize=2)
def _venue_vocabulary(with_ccxt: bool) -> frozenset[str]:
    from market_liquidity_monitor.agent.parser import _VENUES

    ids = {v for v in _VENUES if len(v) >= 4}
    if with_ccxt:
        import ccxt

        ids |= {x for x in ccxt.exchanges if len(x) >= 4}
    return frozenset(
        ids - {"paymium", "alpaca", "woofipro", "hyperliquid", "defx", "bequant"} | {"gate", "okx"}
    )


# ---------------------------------------------------------------------------------- numbers


@dataclass
class _Num:
    start: int
    end: int
    text: str
    value: float
    tol: float
    unit: str
    signed: bool


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        for i in range(a, b):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def _numbers(text: str) -> list[_Num]:
    out: list[_Num] = []
    for m in _NUM.finditer(text):
        if m.group("msuf") and not m.group("cur"):  # "5m" is a timeframe, "$2m" two million
            continue
        ip, frac = m.group("int").replace(",", ""), m.group("frac") or ""
        value = float(ip + frac)
        decimals = len(frac) - 1 if frac else 0
        if decimals == 0 and m.group("exp") is None:
            z = len(ip) - len(ip.rstrip("0"))
            sig = len(ip.lstrip("0")) - z
            step = 10.0**z if (z and sig >= 2) else 1.0
        else:
            step = 10.0**-decimals
        if m.group("exp"):
            e = int(m.group("exp"))
            value *= 10.0**e
            step *= 10.0**e
        suf = m.group("suf") or m.group("msuf") or m.group("wsuf")
        if suf:
            value *= _SUFFIX[suf]
            step *= _SUFFIX[suf]
        sign = m.group("sign")
        if sign in ("-", "−"):
            value = -value
        end = m.end()
        unit = "plain"
        um = _UNIT_AFTER.match(text, end)
        if um:
            unit = _UNIT_WORDS.get(um.group(1).lower().lstrip("-"), "plain")
        out.append(_Num(m.start(), end, m.group(), value, 0.5 * step, unit, bool(sign)))
    return out


def _word_numbers(text: str) -> list[_Num]:
    out = []
    for m in _WORDS.finditer(text):
        words = [w for w in re.split(r"[\s-]+", m.group().lower()) if w and w != "and"]
        if words == ["one"]:  # a determiner or pronoun far more often than a figure ("one of them")
            continue
        if re.search(r"\bno\s+$", text[max(0, m.start() - 4) : m.start()], re.I):  # "no two books are"
            continue
        if words == ["zero"] and re.search(r"\bthan\s+$", text[max(0, m.start() - 6) : m.start()], re.I):
            continue  # "greater than zero": a rule, not a figure
        total, current = 0, 0
        for w in words:
            if w in _NUM_WORD_UNITS:
                current += _NUM_WORD_UNITS[w]
            elif w == "hundred":
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * _NUM_WORD_SCALES[w]
                current = 0
        value = float(total + current)
        unit = "plain"
        um = _UNIT_AFTER.match(text, m.end())
        if um:
            unit = _UNIT_WORDS.get(um.group(1).lower().lstrip("-"), "plain")
        out.append(_Num(m.start(), m.end(), m.group(), value, 0.5, unit, False))
    return out


def _candidates(n: _Num, f: _Fact) -> list[float]:
    v = f.value
    if n.unit in ("ms", "s"):
        if f.unit == n.unit:
            return [v]
        return [v / 1000] if (n.unit, f.unit) == ("s", "ms") else []
    if n.unit == "bps":
        if f.unit == "bps":
            return [v]
        if f.unit == "pct":
            return [v * 100]
        return [v * 1e4] if abs(v) <= 1 else []
    if n.unit == "pct":
        if f.unit == "pct":
            return [v]
        if f.unit == "bps":
            return [v / 100]
        return [v * 100] if abs(v) <= 1 else []
    return [v]


# Words that state a negative figure's sign ("a loss of 6,467"): there an unsigned number may match a
# negative field and a "-" flips the meaning ("a loss of -6,467" is a profit).
_NEG_WORDS = re.compile(r"\b(?:loss|losses|lost|down by|fell by)(?: of)?(?: about| roughly)?\s*\$?$", re.I)


def _value_ok(n: _Num, f: _Fact, negative_context: bool) -> bool:
    for c in _candidates(n, f):
        eps = 1e-9 * max(1.0, abs(c))
        if negative_context:
            # "a loss of 380" states -380 ("a loss of -380" would be +380); an unsigned figure may
            # also be a non-negative field as written.
            if abs(c + n.value) <= n.tol + eps or (
                not n.signed and c >= -eps and abs(c - n.value) <= n.tol + eps
            ):
                return True
            continue
        if abs(c - n.value) <= n.tol + eps and (n.signed or c >= -eps or abs(n.value) <= n.tol):
            return True
    return False


def _scope_ok(seg_venues: frozenset, seg_symbols: frozenset, venues: frozenset, symbols: frozenset) -> bool:
    if seg_venues and venues and not (seg_venues & venues):
        return False
    return not (seg_symbols and symbols and not (seg_symbols & symbols))


# The field units a number written in a unit can stand for (``_candidates``).
_COMPATIBLE_UNITS = {
    "plain": {"plain", "bps", "pct", "ms", "s"},
    "bps": {"bps", "pct"},
    "pct": {"pct", "bps", "plain"},
    "ms": {"ms"},
    "s": {"s", "ms"},
}


def _mask_of(f: _Fact) -> int:
    """The labels field ``f`` carries, as a bit mask (cached on the fact)."""
    if f.mask is None:
        f.mask = _key_mask(f.key)
    return f.mask


@lru_cache(maxsize=16384)
def _key_mask(key: str) -> int:
    """The labels a field named ``key`` carries, as a bit mask: a function of the name alone, and
    the same field names come back in every answer (bench_api: ~3 ms of each chat answer's
    grounding was recomputing them)."""
    return sum(1 << i for i in range(len(_LABELS)) if _label_ok({i}, key))


def _score(labels: set[int], f: _Fact) -> int:
    return (_mask_of(f) & sum(1 << i for i in labels)).bit_count()


def _label_ok(labels: set[int], key: str) -> bool:
    """Whether a field named ``key`` carries one of the text's labels (a label's ``!x`` entries are
    substrings the field must not have: "fee" is not the VWAP "incl. fee")."""
    if not labels:
        return True
    for i in labels:
        subs = _LABELS[i][1]
        if any(s in key for s in subs if s[0] != "!") and not any(s[1:] in key for s in subs if s[0] == "!"):
            return True
    return False


# --------------------------------------------------------------------------------- segments


@dataclass
class _Segment:
    start: int
    end: int
    venues: frozenset[str]
    symbols: frozenset[str]


_SENTENCE_END = re.compile(r"(?<=[!?;])\s+(?=\S)|(?<=\.)\s+(?=[A-Z\[(\"])")


def _segments(answer: str, facts: _Facts) -> list[_Segment]:
    """Sentences (and ``;``-separated parts) with the venues and pairs they name; one that names
    none inherits those of the sentence before it on the same line."""
    venue_re = _word_re(facts.venues)
    symbol_re = _symbol_re(facts.symbols)
    segs: list[_Segment] = []
    pos = 0
    for line in answer.split("\n"):
        prev_v: frozenset = frozenset()
        prev_s: frozenset = frozenset()
        cuts = [0] + [m.end() for m in _SENTENCE_END.finditer(line)] + [len(line)]
        for a, b in pairwise(cuts):
            part = line[a:b]
            v = frozenset(m.group().lower() for m in venue_re.finditer(part)) if venue_re else frozenset()
            s = frozenset(m.group() for m in symbol_re.finditer(part)) if symbol_re else frozenset()
            if not v and not s:
                v, s = prev_v, prev_s
            segs.append(_Segment(pos + a, pos + b, v, s))
            prev_v, prev_s = v, s
        pos += len(line) + 1
    return segs


def _word_re(words: Iterable[str]) -> re.Pattern[str] | None:
    return _word_re_cached(frozenset(words))


@lru_cache(maxsize=64)
def _word_re_cached(words: frozenset[str]) -> re.Pattern[str] | None:
    words = sorted(words, key=len, reverse=True)
    if not words:
        return None
    return re.compile(r"(?<![\w])(?:" + "|".join(map(re.escape, words)) + r")(?![\w])", re.I)


def _symbol_re(symbols: Iterable[str]) -> re.Pattern[str] | None:
    return _symbol_re_cached(frozenset(symbols))


@lru_cache(maxsize=64)
def _symbol_re_cached(symbols: frozenset[str]) -> re.Pattern[str] | None:
    symbols = sorted(symbols, key=len, reverse=True)
    if not symbols:
        return None
    return re.compile(r"(?<![\w/])(?:" + "|".join(map(re.escape, symbols)) + r")(?![\w/\-]|:\w)")


def _segment_at(segs: list[_Segment], pos: int) -> _Segment:
    for s in segs:
        if s.start <= pos < s.end:
            return s
    return segs[-1] if segs else _Segment(0, 0, frozenset(), frozenset())


# --------------------------------------------------------------------------------- the check


def check_grounding(
    answer: str, sources: Iterable[Any], question: str | Iterable[str] = ""
) -> GroundingReport:
    """Check every number, date, venue name and verdict of ``answer`` against ``sources`` (the
    conversation's tool calls, ``{"tool", "args", "result"}`` each, or bare result dicts) and the
    user's ``question`` (one string, or the conversation's questions). See the module docstring for
    the matching rules. Never raises on text; returns a ``GroundingReport``."""
    return Grounder(sources, question).check(answer)


class Grounder:
    """The facts of one conversation's tool results, indexed once, to check one or more answers
    against (``check``); ``check_grounding`` is ``Grounder(sources, question).check(answer)``."""

    def __init__(self, sources: Iterable[Any], question: str | Iterable[str] = ""):
        questions = [question] if isinstance(question, str) else list(question)
        self.questions = [q for q in questions if q]
        self.facts = _facts_of(sources, self.questions)

    def check(self, answer: str) -> GroundingReport:
        """The ``GroundingReport`` of ``answer``."""
        return _check(answer, self.facts, self.questions)


def _check(answer: str, facts: _Facts, questions: list[str]) -> GroundingReport:
    segs = _segments(answer, facts)
    unsupported: list[UnsupportedItem] = []
    covered: list[tuple[int, int]] = []
    checked = 0

    def flag(a: int, b: int, kind: str, reason: str) -> None:
        unsupported.append(UnsupportedItem(text=answer[a:b], start=a, end=b, kind=kind, reason=reason))

    def in_covered(a: int, b: int) -> bool:
        return any(x <= a and b <= y for x, y in covered)

    # 1. Text copied verbatim from a result about the same venue backs the figures inside it.
    for t in sorted(facts.texts, key=lambda t: -len(t.text)):
        body = t.text.rstrip(".")  # a writer may end its sentence at the text's own full stop
        for m in re.finditer(re.escape(body), answer):
            if in_covered(*m.span()):
                continue
            seg = _segment_at(segs, m.start())
            if _scope_ok(seg.venues, frozenset(), t.venues, frozenset()):
                covered.append(m.span())
                checked += sum(1 for _ in _NUM.finditer(t.text))

    # 2. Dates.
    for m in _ISO_DT.finditer(answer):
        if in_covered(*m.span()):
            continue
        checked += 1
        dt = _dt_from_groups(*m.group(1, 2, 3, 4, 5, 6, 7))
        prec = (
            "day"
            if m.group(4) is None
            else ("min" if m.group(6) is None else ("s" if m.group(7) is None else m.group(7)))
        )
        seg = _segment_at(segs, m.start())
        if dt is None or not _date_ok(dt, prec, seg, facts):
            flag(
                *m.span(),
                "date",
                "no timestamp of a tool result for this venue matches it at the written precision",
            )
        covered.append(m.span())
    for rx, order in ((_DMY, "dmy"), (_MDY, "mdy")):
        for m in rx.finditer(answer):
            if in_covered(*m.span()):
                continue
            checked += 1
            g = m.groups()
            d, mon, y = (g[0], g[1], g[2]) if order == "dmy" else (g[1], g[0], g[2])
            month = _MONTHS.get(mon.lower().rstrip("."))
            dt = _dt_from_groups(y, month, d, *g[3:7]) if month else None
            prec = "day" if g[3] is None else ("min" if g[5] is None else ("s" if g[6] is None else g[6]))
            seg = _segment_at(segs, m.start())
            if dt is None or not _date_ok(dt, prec, seg, facts):
                flag(*m.span(), "date", "no timestamp of a tool result matches it at the written precision")
            covered.append(m.span())

    # 3. Numbers (digits and words).
    idents = [m.span() for m in _IDENT.finditer(answer) if m.group().lower() not in facts.venues]
    quoted = [m.span() for m in _QUOTED_QUESTION.finditer(answer)]  # example questions, not figures
    masked = _mask(answer, covered + idents + quoted)
    short_strings = {s for s in facts.strings if len(s) <= 12}
    nums = sorted(_numbers(masked) + _word_numbers(masked), key=lambda n: n.start)
    labels_prev: set[int] = set()
    for i, n in enumerate(nums):
        if masked[n.start : n.end].strip().lower() in short_strings and n.text.isdigit() is False:
            continue
        tail = re.match(r"[A-Za-z]+", answer[n.end :])
        if tail and (n.text + tail.group()).lower() in short_strings:  # "5m", "1h": a timeframe
            continue
        checked += 1
        seg = _segment_at(segs, n.start)
        labels, restates = _number_labels(masked, nums, i, seg)
        if not labels and restates and i and n.unit in (nums[i - 1].unit, "plain"):
            labels = labels_prev  # "42.8 BTC bid (2,638,807 USDT)" restates the figure before it
        labels_prev = labels
        before = masked[max(seg.start, n.start - 40) : n.start]
        negative = bool(_NEG_WORDS.search(before))
        best = facts.best_score(labels, seg, n.unit) if labels else 0
        want = sum(1 << j for j in labels)
        ok = any(
            (
                not labels
                or (
                    (_mask_of(f) & want).bit_count() == best
                    if f.kind == "field"
                    else (_mask_of(f) & want).bit_count() > 0
                )
            )
            and _value_ok(n, f, negative)
            for f in facts.near(n, negative, seg)  # facts in the segment's scope only
        )
        if not ok:
            what = ", ".join(_LABELS[j][1][0].strip("._") for j in sorted(labels))
            what = f"{what} field" if what else "field"
            where = f" of {', '.join(sorted(seg.venues))}" if seg.venues else ""
            flag(
                n.start,
                n.end,
                "number",
                f"no {what}{where} in the tool results has this value, sign and unit",
            )

    # 4. Venue names and verdicts.
    checked_claims = _check_claims(_mask(answer, quoted), facts, segs, questions, flag)
    return GroundingReport(
        verdict="unsupported" if unsupported else "grounded",
        grounded=not unsupported,
        numbers_checked=checked,
        claims_checked=checked_claims,
        unsupported=sorted(unsupported, key=lambda u: u.start),
    )


# Words between a label and its number that mean the label is about something else ("fees among the 2").
_PRE_CUT = re.compile(
    r"among|after|across|for|with|over|in|on|between|than|or|but|while|because|since|if|vs|versus", re.I
)
_QUOTED_QUESTION = re.compile(r'["“][^"”\n]{5,200}\?["”]')
_ASSET = re.compile(r"\s*(?:%|bps\b|bp\b|basis points?\b|-?percent\b|ms\b|s\b|[A-Z][A-Z0-9]{1,9}\b)?")


def _number_labels(masked: str, nums: list[_Num], i: int, seg: _Segment) -> tuple[set[int], bool]:
    """The labels around number ``i``: up to four words before it in its clause, and up to two
    words after it (past its unit or asset), or the words of a parenthesis right after it
    ("1.0189 (OLS, ..."). Also whether it restates the number before it ("0.01 USDT (0.00 bps)")."""
    n = nums[i]
    prev_digit = next((p for p in reversed(nums[:i]) if any(c.isdigit() for c in p.text)), None)
    lo = max(seg.start, prev_digit.end if prev_digit else 0)
    pre = masked[lo : n.start]
    cut = list(_DELIM.finditer(pre))
    if cut:
        pre = pre[cut[-1].end() :]
    words = pre.split()[-6:]
    for j in range(len(words) - 1, -1, -1):
        if _PRE_CUT.fullmatch(words[j]):
            words = words[j + 1 :]
            break
    pre = " ".join(words) + " \x00"
    hi = min(seg.end, nums[i + 1].start if i + 1 < len(nums) else len(masked))
    post = masked[n.end : hi]
    unit = _ASSET.match(post)
    post = post[unit.end() :]
    if re.search(r"%|percent", unit.group()):  # "the five-percent level": a significance level
        post = re.sub(r"^\s*level\b", "", post)
    paren = re.match(r"\s*\(([^()]*)", post)
    if paren:
        post = paren.group(1)
    cut2 = _DELIM.search(post) or re.search("=", post)
    if cut2:
        post = post[: cut2.start()]
    elif paren and i + 1 < len(nums) and nums[i + 1].start <= hi:
        post = ""  # "(slippage vs the best ask: 0.25 bps)": those words name the next figure
    stop = _STOP.search(post)
    if stop:
        post = post[: stop.start()]
    post = " ".join(post.split()[:3])
    restates = bool(
        i
        and nums[i - 1].end >= seg.start
        and re.fullmatch(r"\s*(?:[A-Za-z%]+\s*){0,2}\(\s*", masked[nums[i - 1].end : n.start])
    )
    labels = _labels_in(pre) | _labels_in(post)
    nxt = nums[i + 1] if i + 1 < len(nums) else None
    if nxt is not None and re.fullmatch(r"\s+of\s+", masked[n.end : nxt.start]):  # "2 of 6 venue(s)"
        after = masked[nxt.end : min(seg.end, nxt.end + 40)]
        labels |= _labels_in("\x01 " + " ".join(after.split()[:2]))
    if prev_digit is not None and re.fullmatch(r"\s+of\s+", masked[prev_digit.end : n.start]):
        labels |= _labels_in("\x02")
    # "taker fees 10.00 and 10.00 bps": the second figure of a list has the first one's labels
    lists = bool(
        prev_digit is not None
        and re.fullmatch(r"\s*(?:bps|%)?\s*(?:and|or)\s+", masked[prev_digit.end : n.start])
    )
    return labels, restates or lists


def _date_ok(dt: datetime, prec: str, seg: _Segment, facts: _Facts) -> bool:
    for d in facts.dates:
        if not _scope_ok(seg.venues, seg.symbols, d.venues, d.symbols):
            continue
        if prec == "day":
            ok = d.dt.date() == dt.date()
        elif prec == "min":
            ok = abs((d.dt - dt).total_seconds()) < 60 and (
                d.dt.replace(second=0, microsecond=0) == dt or abs((d.dt - dt).total_seconds()) <= 30
            )
        elif prec == "s":
            ok = abs((d.dt - dt).total_seconds()) < 1 and (
                d.dt.replace(microsecond=0) == dt or abs((d.dt - dt).total_seconds()) <= 0.5
            )
        else:
            ok = abs((d.dt - dt).total_seconds()) <= 0.5 * 10.0 ** -(len(prec) - 1) + 1e-6
        if ok:
            return True
    return False


# ----------------------------------------------------------------------------------- claims

_BEST = [
    re.compile(r"\bbest(?: venue)?(?: is|:| =)\s+([a-z0-9]+)\b", re.I),
    re.compile(r"\b([a-z0-9]+) is (?:the )?(?:best|cheapest)(?: venue)?\b", re.I),
    re.compile(r"\bbest single venue \(([a-z0-9]+)\)", re.I),
]
_POS_ARB = re.compile(
    r"(?<!no )\barbitrage opportunit(?:y|ies)\b|\bArbitrage after both taker fees: buy\b|(?<!not )(?<!un)\bprofitable\b",
    re.I,
)
_NEG_ARB = re.compile(r"\bno arbitrage\b|\bnot profitable\b|\bunprofitable\b", re.I)
_PNL = re.compile(r"\b(loss|profit) of\b", re.I)
_STAT = re.compile(r"\b(not )?stationary\b", re.I)
_COINT = re.compile(r"\b(not )?cointegrated\b", re.I)
_LIQ_YES = re.compile(
    r"^\s*Yes\b|(?<!not )\benough (?:visible )?liquidity\b|\bcan (?:absorb|fill)\b|\bfully fill(?:s|ed)?\b",
    re.I,
)
_LIQ_NO = re.compile(r"^\s*No:|\bnot enough (?:visible )?liquidity\b|\bcannot (?:fill|absorb)\b", re.I)


def _flags(facts: _Facts, key: str, seg: _Segment | None = None) -> list[_Flag]:
    fl = [f for f in facts.flags if f.key == key]
    if seg is not None:
        fl = [f for f in fl if _scope_ok(seg.venues, seg.symbols, f.venues, f.symbols)]
    latest = [f for f in fl if f.turn == facts.last_turn]
    return latest or fl


def _check_claims(answer: str, facts: _Facts, segs: list[_Segment], questions: list[str], flag) -> int:
    n = 0
    venue_re = _word_re(_known_venues() | facts.venues)
    mentioned = " ".join(facts.strings) + " " + " ".join(q.lower() for q in questions)
    if venue_re:
        for m in venue_re.finditer(answer):
            v = m.group().lower()
            if v in facts.venues:
                continue
            n += 1
            if not re.search(rf"(?<![\w]){re.escape(v)}(?![\w])", mentioned):
                flag(*m.span(), "venue", f"venue {v!r} appears in no tool result")
    for rx in _BEST:
        for m in rx.finditer(answer):
            v = m.group(1).lower()
            if v not in facts.venues:
                continue
            n += 1
            key = "best_single_venue" if "single" in m.group().lower() else "best_venue"
            fl = _flags(facts, key) or _flags(facts, "best_venue")
            if not any(f.value == v for f in fl):
                best = ", ".join(sorted({str(f.value) for f in fl})) or "none"
                flag(*m.span(1), "claim", f"the tool result's {key} is {best}")
    for m in _POS_ARB.finditer(answer):
        n += 1
        if not any(
            isinstance(f.value, int) and f.value > 0 for f in _flags(facts, "arbitrage_opportunities")
        ):
            flag(*m.span(), "claim", "the tool results list no arbitrage opportunity after fees")
    for m in _NEG_ARB.finditer(answer):
        n += 1
        fl = _flags(facts, "arbitrage_opportunities")
        if not fl or any(f.value for f in fl):
            flag(*m.span(), "claim", "the tool results list an arbitrage opportunity, or none was checked")
    for m in _PNL.finditer(answer):
        n += 1
        seg = _segment_at(segs, m.start())
        want_neg = m.group(1).lower() == "loss"
        fl = [f for f in _flags(facts, "pnl_quote", seg) if isinstance(f.value, int | float)]
        if not any((f.value < 0) == want_neg for f in fl):
            flag(*m.span(), "claim", f"the P&L field (pnl_quote) does not show a {m.group(1).lower()}")
    for rx, key, word in (
        (_STAT, "rejects_unit_root_5pct", "stationary"),
        (_COINT, "cointegrated_5pct", "cointegrated"),
    ):
        for m in rx.finditer(answer):
            n += 1
            claim = m.group(1) is None
            fl = _flags(facts, key, _segment_at(segs, m.start()))
            if not any(f.value is claim for f in fl):
                flag(
                    *m.span(),
                    "claim",
                    f"the test result ({key}) does not say {'' if claim else 'not '}{word}",
                )
    for rx, claim in ((_LIQ_YES, True), (_LIQ_NO, False)):
        for m in rx.finditer(answer):
            if claim and _LIQ_NO.search(answer[max(0, m.start() - 4) : m.end()]):
                continue
            n += 1
            seg = _segment_at(segs, m.start())
            fl = _flags(facts, "fully_filled", seg)
            if not any(f.value is claim for f in fl):
                flag(
                    *m.span(),
                    "claim",
                    f"the order's fully_filled is not {str(claim).lower()} in the tool result",
                )
    return n
