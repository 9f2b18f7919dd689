"""Deterministic natural-language query parser behind the offline model.

With no LLM key the assistant still has to turn a trader's question into one tool call. This module
maps free text to a :class:`ParsedQuery` with pure stdlib ``re`` (plus ``difflib`` for light typo
repair of venue and asset names): a capability from the fixed vocabulary of
``../shared/eval/README.md`` and only the arguments the question states.

How a question is read, in order:

1. **Normalise**: curly quotes and dashes to ASCII, typo'd venue/asset names repaired
   (``etherum`` -> ``ethereum``, ``coinbse`` -> ``coinbase``).
2. **Extract** quantities left to right, masking each span so no number is read twice:
   points in time (``2024-09-01 12:00 UTC``, ``noon on 2024-09-02``: ``at``/``as_of``),
   timeframes (``1h candles``, ``hourly``), lookbacks (``last 7 days``, ``past 24 hours``),
   basis-point windows (``50 bps``, ``0.5%``; a slippage limit when the question asks for a size),
   notionals (``$150k``, ``150k USDT worth``, ``15 grand of SOL``, ``a 250k buy``),
   sizes (``10k ETH``, ``2.5 btc``, ``half a BTC``), unified pairs (``eth-usd``, ``ETHUSDT``),
   venues and excluded venues (``exclude okx``, ``leave out bybit``), assets (an unknown ticker in a
   symbol's slot is passed on, so the tool answers "unknown symbol X; closest: ..."), side.
3. **Refuse** unsafe or off-topic text first (prompt injection, credentials, real orders,
   investment advice, jokes and weather), and an order whose size or notional is negative or zero
   ("buy -5 BTC", "sell 0 ETH": ``invalid_size``) instead of reading "-5" as 5.
4. **Classify** with an ordered rule table (:data:`_RULES`): each capability has explicit cue words
   and, for some, an inference from the extracted arguments (two venues -> compare, an order
   -> market impact, a lookback on one asset -> history). The first rule that fires wins.
5. **Follow-ups**: with a ``previous`` query, short or "and/what about/now..." text that lacks a
   capability cue or a subject is merged into the previous query (venue, size, side... replaced).

Example::

    >>> parse_query("what would it cost me to buy 2.5 btc on kraken")
    ParsedQuery(capability='market_impact', args={'symbol': 'BTC', 'venue': 'kraken', 'side': 'buy', 'size': 2.5}, reason=None)
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from market_liquidity_monitor.agent.capabilities import CAPABILITY_TOOLS, capability_args
from market_liquidity_monitor.lazy import lazy_re

__all__ = ["CAPABILITIES", "ParsedQuery", "parse_query"]

#: The capability vocabulary (``agent.capabilities``: one table for parser, planner and evaluation).
CAPABILITIES: Final[tuple[str, ...]] = tuple(CAPABILITY_TOOLS)


@dataclass(frozen=True)
class ParsedQuery:
    """A question mapped to one capability.

    ``args`` holds only what the question states, named as the arguments of the tools that serve
    the capability (``agent.capabilities``: read from the tool signatures): ``symbol``, ``venue``,
    ``venues``, ``side``, ``size`` (base units), ``notional`` (quote units), ``window_bps``,
    ``max_slippage_bps``, ``lookback_days`` (an hour count becomes a fraction of a day),
    ``timeframe``, ``symbol_a``, ``symbol_b``, ``exclude_venues``, ``schedule``, ``at`` (ISO 8601 UTC) / ``as_of``
    (the book instant asked, in the forms ``services.books.parse_as_of`` reads). Which of these a capability keeps is read from its tools' signatures, so a tool
    that gains an argument the parser already extracts (``as_of``) receives it with no change here.
    ``reason`` says why for ``refuse`` (``"<code>: <explanation>"``) and is an optional note otherwise.
    """

    capability: str
    args: dict[str, Any]
    reason: str | None = None
    #: Details outside the eval vocabulary. For ``alerts``: ``alert_action`` (create / list /
    #: recent) and, to create a rule, ``metric``, ``comparison``, ``threshold``, ``window_bps``.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.capability not in CAPABILITIES:
            raise ValueError(f"Unknown capability {self.capability!r}; valid: {', '.join(CAPABILITIES)}.")


# ---------------------------------------------------------------------------------------------
# Alias tables (data, not code)
# ---------------------------------------------------------------------------------------------

#: Base assets: ticker -> spellings that are unambiguous in trading chat (matched case-insensitively).
_ASSETS: Final[dict[str, tuple[str, ...]]] = {
    "BTC": ("btc", "xbt", "bitcoin", "bitcoins"),
    "BCH": ("bch", "bitcoin cash"),
    "ETH": ("eth", "ether", "ethereum"),
    "ETC": ("ethereum classic",),
    "SOL": ("sol", "solana"),
    "XRP": ("xrp", "ripple"),
    "LTC": ("ltc", "litecoin"),
    "DOGE": ("doge", "dogecoin"),
    "ADA": ("ada", "cardano"),
    "BNB": ("bnb",),
    "AVAX": ("avax",),
    "DOT": ("polkadot",),
    "LINK": ("chainlink",),
    "MATIC": ("matic", "polygon"),
    "POL": ("pol",),
    "TRX": ("trx", "tron"),
    "SHIB": ("shib", "shiba", "shiba inu"),
    "ATOM": ("cosmos",),
    "UNI": ("uniswap",),
    "APT": ("aptos",),
    "ARB": ("arbitrum",),
    "SUI": ("sui",),
    "PEPE": ("pepe",),
    "TON": ("toncoin",),
    "XLM": ("xlm",),
    "FIL": ("filecoin",),
    "INJ": ("inj", "injective"),
    "TIA": ("celestia",),
    "WIF": ("wif", "dogwifhat"),
    "XMR": ("xmr", "monero"),
    "AAVE": ("aave",),
    "HBAR": ("hbar", "hedera"),
    "ICP": ("icp",),
    "BONK": ("bonk",),
    "RNDR": ("rndr",),
    "SEI": ("sei",),
}

#: Tickers that are also English words: matched only when written in capitals ("LINK"), after a
#: quantity ("100 link"), as a cashtag ("$link") or inside a pair ("link/usdt").
_AMBIGUOUS_TICKERS: Final[dict[str, str]] = {
    "link": "LINK",
    "dot": "DOT",
    "near": "NEAR",
    "op": "OP",
    "ton": "TON",
    "etc": "ETC",
    "arb": "ARB",
    "atom": "ATOM",
    "uni": "UNI",
    "apt": "APT",
    "fil": "FIL",
    "tia": "TIA",
    "algo": "ALGO",
    "sand": "SAND",
}

#: Quote currencies of a unified symbol; keys are spellings, values the ccxt code.
_QUOTES: Final[dict[str, str]] = {
    "usdt": "USDT",
    "usdc": "USDC",
    "usd": "USD",
    "busd": "BUSD",
    "fdusd": "FDUSD",
    "tusd": "TUSD",
    "dai": "DAI",
    "eur": "EUR",
    "gbp": "GBP",
    "jpy": "JPY",
    "btc": "BTC",
    "xbt": "BTC",
    "eth": "ETH",
    "bnb": "BNB",
}

#: Quotes that are themselves crypto assets: "ETH/BTC" in a pairs question is two legs.
_CRYPTO_QUOTES: Final[frozenset[str]] = frozenset({"BTC", "ETH", "BNB"})

#: Venues: ccxt id -> spellings. Spaces and hyphens in a spelling match any of " ", "-", "_" or none.
_VENUES: Final[dict[str, tuple[str, ...]]] = {
    "binanceusdm": (
        "binanceusdm",
        "binance futures",
        "binance perps",
        "binance perp",
        "binance perpetuals",
        "binance usd-m",
        "binance usd-m futures",
        "usd-m",
        "usd-m futures",
    ),
    "binancecoinm": ("binancecoinm", "binance coin-m", "coin-m", "binance inverse"),
    "binanceus": ("binanceus", "binance us", "binance.us"),
    "binance": ("binance", "binance spot", "binance.com", "bin", "bnc", "bnce"),
    "coinbase": ("coinbase", "coinbase pro", "coinbase advanced", "coinbase exchange", "cbpro", "gdax", "cb"),
    "krakenfutures": ("krakenfutures", "kraken futures"),
    "kraken": ("kraken", "kraken spot", "krkn"),
    "bybit": ("bybit",),
    "okx": ("okx", "okex"),
    "bitstamp": ("bitstamp",),
    "gemini": ("gemini",),
    "kucoin": ("kucoin",),
    "gate": ("gateio", "gate.io", "gate"),
    "bitfinex": ("bitfinex", "bfx"),
    "hyperliquid": ("hyperliquid",),
    "htx": ("htx", "huobi"),
    "mexc": ("mexc",),
    "bitget": ("bitget",),
    "deribit": ("deribit",),
    "cryptocom": ("crypto.com", "cryptocom"),
    "bitmex": ("bitmex",),
    "upbit": ("upbit",),
    "poloniex": ("poloniex",),
}

#: Number words accepted before an asset ("ten BTC") or a time unit ("two weeks").
_NUMBER_WORDS: Final[dict[str, int]] = {
    "a": 1,
    "an": 1,
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
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
}

#: Suffix multipliers for "10k", "$2m", "1.5 million".
_MULTIPLIERS: Final[dict[str, int]] = {
    "k": 1_000,
    "thousand": 1_000,
    "grand": 1_000,
    "m": 1_000_000,
    "mm": 1_000_000,
    "mn": 1_000_000,
    "mil": 1_000_000,
    "million": 1_000_000,
    "b": 1_000_000_000,
    "bn": 1_000_000_000,
    "billion": 1_000_000_000,
}

#: Lookback units in days ("hour" is handled separately: it never becomes ``lookback_days``
#: unless the count is a multiple of 24).
_DAYS_PER_UNIT: Final[dict[str, int]] = {"d": 1, "w": 7, "mo": 30, "y": 365, "fortnight": 14, "quarter": 90}

#: Canonical unit letter for every spelling of a time unit.
_UNIT_LETTER: Final[dict[str, str]] = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "w"),
    **dict.fromkeys(("mo", "mos", "month", "months"), "mo"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "y"),
    "fortnight": "fortnight",
    "quarter": "quarter",
}

_TIMEFRAME_ADJECTIVES: Final[dict[str, str]] = {
    "minutely": "1m",
    "hourly": "1h",
    "daily": "1d",
    "weekly": "1w",
}


def _allowed(capability: str) -> tuple[str, ...]:
    """Argument names ``capability``'s tools accept (their signatures; ``agent.capabilities``), plus
    ``venue`` where a tool takes ``venues`` (one named venue is passed as ``venue``)."""
    args = capability_args(capability)
    return (*args, "venue") if "venues" in args and "venue" not in args else args


#: Words that are written in capitals but are not tickers (for unknown-asset detection).
_NOT_TICKERS: Final[frozenset[str]] = frozenset(
    {"USD", "USDT", "USDC", "EUR", "GBP", "JPY", "CHF", "BPS", "BP", "API", "UTC", "GMT", "ETF", "CEX", "DEX",
     "OK", "I", "A", "SOR", "HHI", "VWAP", "TWAP", "ADF", "OLS", "TOB", "BBO", "PNL", "FAQ", "AM", "PM", "ATH",
     "ATL", "OTC", "KYC", "FX", "US", "UK", "EU", "AI", "LLM", "MCP", "CSV", "JSON", "ID", "TP", "SL", "IOC",
     "FOK", "GTC", "VIP", "MM", "NO", "YES", "ALL", "ANY", "THE", "AND", "OR", "BUY", "SELL", "PERP",
     "PERPS", "SWAP", "SPOT", "BTW", "ASAP", "WHAT", "HOW", "IS", "IT", "ON", "IN", "AT", "TO", "FOR", "OF",
     "ME", "MY", "L2", "L1", "P2P", "DEPTH", "SPREAD", "BOOK", "LIQUIDITY", "SLIPPAGE", "MAX", "MIN", "AVG"}
)  # fmt: skip
#: A ticker-like word the alias tables do not know: capitals and digits ("FOOBAR", "PEPE2") or a
#: cashtag ("$wif"), read from the text as written.
_UNKNOWN_TICKER_RE: Final = lazy_re(
    r"(?<![A-Za-z0-9/$])(?:\$(?P<cash>[A-Za-z][A-Za-z0-9]{1,9})|(?P<caps>[A-Z][A-Z0-9]{1,9}))(?![A-Za-z0-9])"
)
#: "the largest size within 5 bps of slippage", "how much can I sell before the price moves 0.5%".
_MAX_SIZE_RE: Final = lazy_re(
    r"\b(?:largest|biggest|max(?:imum)?|most|how\s+(?:much|many|big|large)\b[^.?!]{0,30}\b(?:can|could|may)"
    r"|size\s+limit|capacity|what\s+size)\b[^.?!]{0,80}\b(?:within|inside|under|below|less\s+than|without|before|keep(?:ing)?"
    r"|at\s+most|no\s+more\s+than|capped\s+at|limit(?:ed)?\s+to|max(?:imum)?\s+of)\b"
)
#: Wording that asks for a size rather than states one: with a bps figure and no amount, the figure is
#: the limit ("how far can I push BTC: max size at 30 bps", "capacity at 20 bps").
_MAX_SIZE_CUE_RE: Final = lazy_re(
    r"\b(?:largest|biggest|max(?:imum)?\s+(?:size|sz|order|amount|qty|quantity|clip|buy|sell|trade|notional)"
    r"|max\s+\w+\s+(?:size|sz|order|amount|clip|buy|sell|trade)|how\s+(?:much|many|big|large|far|deep)\b[^.?!]{0,30}\b(?:can|could|may)"
    r"|size\s+limit|capacity|how\s+big\s+(?:a|an)\s+(?:order|trade|clip)"
    r"|most\s+(?:\w+\s+)?(?:i|we|you)\s+(?:can|could)|up\s+to\s+what\s+size"
    r"|what\s+(?:size|amount|qty|quantity)\b[^.?!]{0,30}\b(?:fits?|stays?|keeps?)"
    r"|clip\s+size|size\s+cap|(?:bps|bp|bips|%)\s+max)\b"
)
#: Wording that makes a bps figure a limit on the order's cost, not a depth window: with no order
#: amount stated, "max 3 bps slippage", "at 20 bps of impact", "before the price moves 1%" ask for the
#: largest size within it (``max_size_within_slippage``).
_SLIPPAGE_LIMIT_RE: Final = lazy_re(
    r"\bslip+a?ge?\b|\bslip(?:s|ping)?\b|\bimpact\b|\bprice[\s-]+(?:move|moves|moving|impact)\b"
    r"|\b(?:mov(?:e|es|ing)|push(?:es|ing)?|shift(?:s|ing)?)\s+(?:the\s+)?(?:price|market|mid|book)\b"
)
#: Perpetual/futures wording that turns "BTCUSDT" into the linear perp "BTC/USDT:USDT".
_PERP_RE: Final = lazy_re(r"\b(?:perps?|perpetuals?|swaps?|futures|usd-?m|linear)\b")
#: How a backtested order is worked: spread evenly (TWAP) or with the volume (VWAP schedule).
_TWAP_SCHEDULE_RE: Final = lazy_re(
    r"\btwap\b|\btime[\s-]weighted\b|\bspread\s+(?:it\s+|evenly\s+|out\s+)*(?:over|across)\s+(?:the\s+)?(?:window|period"
    r"|week|days?|hours?)\b|\bin\s+(?:equal|even|evenly[\s-]sized|equal[\s-]sized|same[\s-]size[d]?)?\s*"
    r"(?:slices|chunks|tranches|clips|pieces|parts)\b|\bgradually\b|\bdrip(?:ped|ping)?\b"
    r"|\bevenly\b"
)
_VWAP_SCHEDULE_RE: Final = lazy_re(
    r"\bvolume[\s-]?weighted\b(?!\s+(?:average\s+)?price)|\bvwap\s+(?:buy|sell|order|execution|slicing)\b|"
    r"\bvwap[\s-]+(?:schedul(?:e|ed)|algo|execution|strategy|order|style|slices|basis|profile|curve)\b|\bvwap'?d\b|\bvolume[\s-]weighted\s+(?:schedule|execution|slices)\b"
    r"|\bwith\s+(?:the\s+)?volume\b|\b(?:as\s+a|using\s+a|via\s+a|with\s+a)\s+vwap\b"
)
#: A bare "vwap"/"twap" written after the order as its tag ("sell 300 sol vwap 14d", "buy 10 btc twap"),
#: not as the price asked for ("what vwap would I get", "the vwap for selling", "vwap price").
_SCHEDULE_TAG_RE: Final = lazy_re(
    r"\b(?:buy|sell|bought|sold|buying|selling|order)\b[^.?!]*?(?<!what\s)(?<!what's\s)(?<!the\s)(?<!my\s)"
    r"(?<!avg\s)(?<!average\s)(?<!get\s)(?<!got\s)(?<!a\s)\b(?P<algo>vwap|twap)\b"
    r"(?!\s+(?:price|prices|of|for|on|cost|fill|level|would|will|do|does|is|was|vs|versus)\b)(?!\s*\?)"
)
#: In a question that names a backtest, a bare "vwap"/"twap" is how the order is worked, unless a
#: price or level of it is asked ("the vwap price").
_BACKTEST_ALGO_RE: Final = lazy_re(
    r"\b(?P<algo>vwap|twap)\b(?!\s+(?:price|prices|px|level|levels|fill|of|vs|versus)\b)"
)
#: An order sent whole at one moment (``Schedule.ARRIVAL``): "arrival schedule", "all at once", "in one go";
#: not the arrival price a cost is measured against ("cost vs arrival mid").
_ARRIVAL_SCHEDULE_RE: Final = lazy_re(
    r"\barrival\b(?![\s-]+(?:mid|price|px|quote|benchmark))|\ball\s+at\s+once\b|\bin\s+one\s+(?:go|shot|clip|block|piece)\b"
    # "an arrival-price sell": the adjective of an order is how it is worked, not its benchmark
    r"|\barrival[\s-]+price[\s-]+(?:buy|sell|order|execution|schedule|strategy|algo|style)\b"
    r"|\b(?:single|one)\s+(?:clip|block|shot)\b|\bas\s+(?:a|one)\s+(?:block|clip)\b"
)
#: A comparison right before a number: the number is a level ("< 1m" is a million, not 1-minute candles;
#: "over 5m" stays ambiguous and keeps its timeframe reading).
_COMPARATOR_BEFORE_RE: Final = lazy_re(
    r"(?:[<>]=?|\b(?:below|under|above|than|exceeds?|beyond|hits?|reach(?:es)?|crosses))\s*\$?\s*$"
)
#: A recency word right before a number: "last 30m" is a window, not a timeframe.
_RECENT_BEFORE_RE: Final = lazy_re(r"\b(?:last|past|previous|prior|trailing)\s+$")
_INVERSE_RE: Final = lazy_re(r"\b(?:coin-?m|inverse|coin[\s-]margined)\b")


# ---------------------------------------------------------------------------------------------
# Compiled regexes
# ---------------------------------------------------------------------------------------------


def _alternation(words: Iterable[str], flexible: bool = False) -> str:
    """Regex alternation of ``words``, longest first; ``flexible`` lets " " and "-" match [ _-]?."""
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        if flexible:
            parts.append(r"[\s_-]?".join(re.escape(p) for p in re.split(r"[\s-]", word)))
        else:
            parts.append(re.escape(word).replace(r"\ ", r"\s+"))
    return "|".join(parts)


def _quantity(tag: str) -> str:
    """A number with optional thousands commas (or single spaces: "10 000") and multiplier; groups
    ``<tag>num``/``<tag>mult``."""
    mults = _alternation(k for k in _MULTIPLIERS if len(k) <= 2)
    words = _alternation(k for k in _MULTIPLIERS if len(k) > 2)
    return (
        rf"(?<![\w.,])(?P<{tag}num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d{{1,3}}(?:\s\d{{3}})+(?![\w.,])|\d+(?:\.\d+)?(?:e[+-]?\d{{1,4}})?|\.\d+)"
        rf"(?:(?P<{tag}mult>{mults})(?![a-z])|\s*(?P<{tag}multw>{words})\b)?"
    )


#: Month names for written dates ("1 sep 2024", "Sept 1st, 2024").
_MONTHS: Final[dict[str, int]] = {
    name: n
    for n, names in enumerate(
        (("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
         ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
         ("oct", "october"), ("nov", "november"), ("dec", "december")),
        1,
    )
    for name in names
}  # fmt: skip
_CLOCK: Final = (
    r"(?:(?:[t\s]|\s*,?\s*at\s+|\s+@\s*)(?:(?P<cw>noon|midnight)|(?P<hh>\d{1,2})(?::(?P<mm>\d{2})"
    r"(?::(?P<ss>\d{2}))?)?(?:\.\d+)?\s*(?P<ampm>am|pm)?(?(mm)|(?(ampm)|(?=\s*(?:z|utc|gmt|h\b))))))?"
    r"\s*(?:(?:utc|gmt)?\s*(?P<off>[+-])(?P<oh>\d{2}):?(?P<om>\d{2})\b|z\b|utc\b|gmt\b)?"
)
#: A clock written before its date: "at 14:00 on 2024-09-01", "noon on 2024-09-02" (minutes, am/pm
#: or noon/midnight required, so "buy 5 on 2024-09-01" keeps its size).
_CLOCK_FIRST: Final = (
    r"(?:\bat\s+)?(?:\b(?P<cw>noon|midnight)|(?<![\w.,])(?P<hh>\d{1,2})(?::(?P<mm>\d{2})(?::(?P<ss>\d{2}))?)?"
    r"\s*(?P<ampm>am|pm)?(?(mm)|(?(ampm)|(?!))))\s*(?:z\b|utc\b|gmt\b)?\s*,?\s*(?:on\s+)?"
)
#: A point in time: ISO dates with an optional clock ("2024-09-01 12:00 UTC", "2024-08-15T08:30Z")
#: and written dates with a year ("1 sep 2024 14:00", "sept 1, 2024 at 2pm").
_TIME_RES: Final[tuple[re.Pattern[str], ...]] = (
    lazy_re(_CLOCK_FIRST + r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?![0-9-])"),
    lazy_re(r"(?<![\w.-])(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?![0-9-])" + _CLOCK),
    # the clock before a written date: "00:02 UTC 9 August 2024", "at 23:59 utc, 8 aug 2024"
    lazy_re(
        _CLOCK_FIRST
        + rf"(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{_alternation(_MONTHS)})\.?,?\s+(?P<y>\d{{4}})\b"
    ),
    lazy_re(
        _CLOCK_FIRST
        + rf"(?P<mon>{_alternation(_MONTHS)})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})\b"
    ),
    lazy_re(
        rf"(?<![\w.])(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<mon>{_alternation(_MONTHS)})\.?,?\s+(?P<y>\d{{4}})\b"
        + _CLOCK
    ),
    lazy_re(
        rf"\b(?P<mon>{_alternation(_MONTHS)})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})\b"
        + _CLOCK
    ),
)
#: Two times joined as a range: "from T1 to T2", "between T1 and T2", "T1 until T2" (``start``/``end``).
_RANGE_BEFORE_RE: Final = lazy_re(r"\b(?:from|between|since)\s+$")
_RANGE_JOIN_RE: Final = lazy_re(r"\s*(?:to|and|until|till|thru|through|-|–)\s*")
#: Words that leave venues out of a routing or comparison: "exclude okx and gate", "not on bybit".
_EXCLUDE_CUE_RE: Final = lazy_re(
    r"\b(?:exclud(?:e|es|ed|ing)|excl|ex(?=-)|leav(?:e|ing)\s+out|without|except(?:\s+for)?|but\s+not|skip(?:ping)?"
    r"|avoid(?:ing)?|ignor(?:e|ing)|minus|no|don'?t\s+(?:touch|use|hit|go\s+(?:to|near))|do\s+not\s+(?:touch|use|hit)|not\s+(?:on|via|through|using|to|incl(?:uding)?\.?)"
    r"|(?:keep|stay|kept|staying)\s+(?:it\s+|this\s+|that\s+|them\s+|the\s+order\s+|away\s+)?(?:off|out\s+of|away\s+from)"
    r"|(?:all|every(?:thing|where)?|any)\b[^.?!,]{0,20}?\bbut|w/o|omit(?:ting)?|bar(?:ring)?|sans"
    # "drop okx" leaves a venue out; "depth drop under 30% ... on okx" is a fall of liquidity
    r"|drop(?:ping)?(?!\s+(?:under|below|beneath|by|in|of|to|more|less|over|on|at|after|during|from|\d))"
    r"|other\s+than|apart\s+from"
    r"|besides)\b"
    # a place word after the cue belongs to it: "but not on gate", "except at kraken", "without using okx"
    r"(?:\s+(?:on|at|in|via|from|through|using|to))?\b"
)
#: A venue left out by a verb around it: "leave bybit out", "keep okx off", "count kraken out".
_EXCLUDE_FRAME_BEFORE_RE: Final = lazy_re(
    r"\b(?:leav(?:e|ing)|keep(?:ing)?|cut(?:ting)?|tak(?:e|ing)|count(?:ing)?|rul(?:e|ing))\s+(?:the\s+)?$"
)
_EXCLUDE_FRAME_AFTER_RE: Final = lazy_re(r"\s+(?:out|off)\b")
#: What may stand between an exclusion cue and its venues, or between two excluded venues.
_EXCLUDE_GAP_RE: Final = lazy_re(r"(?:[\s,&/+.-]|\b(?:and|or|nor|the|also|either|any|of)\b)*")


_ALIAS_TO_TICKER: Final[dict[str, str]] = {
    alias: ticker for ticker, aliases in _ASSETS.items() for alias in aliases
} | dict(_AMBIGUOUS_TICKERS)
_ASSET_ALT: Final = _alternation(_ALIAS_TO_TICKER)
_ASSET_RE: Final = lazy_re(rf"(?<![a-z0-9])\$?(?P<asset>{_ASSET_ALT})(?![a-z0-9])")

_TICKER_ALIASES: Final = [a for a in _ALIAS_TO_TICKER if " " not in a and len(a) <= 5]
_PAIR_RE: Final = lazy_re(
    rf"(?<![a-z0-9])(?P<base>{_alternation(_TICKER_ALIASES)})"
    # "eth-usd", "ETHUSDT", and "eth usdc" (a space only before a fiat or stablecoin quote: "eth btc" is two assets)
    rf"(?P<sep>\s?[/\-_]\s?|\s(?=(?:{_alternation(q for q, c in _QUOTES.items() if c not in _CRYPTO_QUOTES)})(?![a-z0-9]))|)"
    rf"(?P<quote>{_alternation(_QUOTES)})"
    rf"(?::(?P<settle>{_alternation(_QUOTES)}))?(?![a-z0-9])"
)

_VENUE_ALIAS: Final[dict[str, str]] = {
    re.sub(r"[\s_-]", "", alias): venue for venue, aliases in _VENUES.items() for alias in aliases
}
_VENUE_RE: Final = lazy_re(
    rf"(?<![a-z0-9])(?P<venue>{_alternation((a for v in _VENUES.values() for a in v), flexible=True)})"
    r"(?![a-z0-9])"
)
#: Venues named, then said to be left out: "bybit and okx perps excluded", "gate, kucoin off limits".
_EXCLUDED_AFTER_RE: Final = lazy_re(
    rf"(?:[\s,&/+]|\b(?:and|or|the|perps?|spot|futures|books?|venues?|exchanges?|both|too|also)\b|{_VENUE_RE.pattern})*"
    r"\s*(?:(?:are|is|to\s+be|should\s+be|must\s+be)\s+)?(?:excluded|left\s+out|off[\s-]limits|banned|not\s+allowed"
    r"|out\s+of\s+scope|ruled\s+out)\b"
)
_PLACED_BEFORE_RE: Final = lazy_re(r"\b(?:on|at|via|from|in|using|through|only)\s+(?:the\s+)?$")
_CB_NOT_COINBASE_RE: Final = lazy_re(r"\s*(?:open|trip)")  # "CB open?" is a circuit breaker
_ALL_VENUES_RE: Final = lazy_re(
    r"\b(?:all|every|each|any|multiple|several|many|the)\s+(?:the\s+|of\s+the\s+)?"
    r"(?:venues?|exchanges?|markets?|books?|cexs?)\b"
)

_TIMEFRAME_UNITS: Final = r"minutes?|mins?|m|hours?|hrs?|hr|h|days?|d|weeks?|wk|w"
_TIMEFRAME_CANDLE_RE: Final = lazy_re(
    rf"(?<![\w.])(?P<num>\d+)\s*-?\s*(?P<unit>{_TIMEFRAME_UNITS})\s*"
    r"(?:candles?|candlesticks?|bars?|klines?|ohlcv?|timeframe|tf|intervals?|resolution|charts?|closes?"
    r"|returns|granularity|data)\b"
)
_TIMEFRAME_ON_RE: Final = lazy_re(
    rf"\b(?:on|using|at)\s+(?:the\s+)?(?P<num>\d+)\s*-?\s*(?P<unit>{_TIMEFRAME_UNITS})(?![a-z0-9])"
    rf"(?!\s*-?\s*\$?(?:{_ASSET_ALT})(?![a-z0-9]))"
)
_TIMEFRAME_ADJ_RE: Final = lazy_re(rf"\b(?P<adj>{_alternation(_TIMEFRAME_ADJECTIVES)})\b")
_TIMEFRAME_COMPACT_RE: Final = lazy_re(r"(?<![\w.$])(?P<num>\d+)(?P<unit>m)(?![a-z0-9])")

_LOOKBACK_PREFIX: Final = (
    r"(?P<prefix>\b(?:(?:in|over|during|for|within|from|across)\s+)?(?:the\s+)?"
    r"(?:last|past|previous|prior|trailing|recent|this)\s+|\b(?:in|over|during|for|within|across)\s+(?:the\s+)?)?"
)
_LOOKBACK_COMPACT_RE: Final = lazy_re(
    _LOOKBACK_PREFIX + r"(?<![\w.])(?P<num>\d+)(?P<unit>hrs?|h|d|wk|w|mo|y|yr)(?![a-z0-9])"
)
_LOOKBACK_WORDS_RE: Final = lazy_re(
    _LOOKBACK_PREFIX
    + rf"(?:(?P<num>\d+(?:\.\d+)?)\s*-?\s*|(?P<word>{_alternation(_NUMBER_WORDS)}|couple of)\s+)?"
    r"(?P<unit>minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|months?|years?|fortnight|quarter)\b"
    r"(?!\s+(?:of\s+)?(?:a\s+|one\s+)?(?:percent|per\s?cent|%|pct|bps|basis))"  # "a quarter of a percent"
    r"(?!\s+(?:million|mil|thousand|billion|bn|grand)\b)"  # "a quarter million usdt" is an amount
)
_YESTERDAY_RE: Final = lazy_re(r"\b(?:since\s+)?yesterday\b")

_BPS_RE: Final = lazy_re(
    r"(?:±|\+/-|\+-)?\s*(?<![\w.])(?P<num>\d+(?:\.\d+)?|\.\d+)\s*"
    r"(?P<unit>bps|bp|bips|basis[\s-]points?|%|percent|pct|per\s?cent)(?![a-z0-9])"
)

_MONEY_RES: Final = (
    # "$150k", "$ 2 million", "usd 1,000,000", "€50k"
    lazy_re(
        r"(?:\$|us\$|€|£|\busd\s?)\s?"
        + _quantity("q")
        + r"(?:\s*(?:usd[tc]?|dollars?))?(?:\s+worth)?(?:\s+of)?"
    ),
    # "150k USDT worth of", "1,000,000 USD", "500k dollars of"
    lazy_re(
        _quantity("q") + r"\s*(?:usd[tc]?|busd|fdusd|tusd|dai|dollars?|bucks|eur|euros?|gbp|€)(?![a-z0-9])"
        r"(?:\s+worth)?(?:\s+of)?"
    ),
    # "10k worth of ETH"
    lazy_re(_quantity("q") + r"\s+worth\b(?:\s+of)?"),
    # "15 grand of SOL", "50k of ETH": an amount with a multiplier "of" an asset is its quote amount
    lazy_re(_quantity("q") + rf"(?<=[a-z])\s+of\s+(?=\$?(?:{_ASSET_ALT})(?![a-z0-9]))"),
)

#: A quote amount in words: "half a million usdt", "a quarter million dollars", "two million bucks",
#: "fifty grand".
_MONEY_WORDS_RE: Final = lazy_re(
    r"\b(?:(?P<half>half)\s+(?:a\s+)?|(?P<quarter>(?:a\s+)?quarter)\s+(?:of\s+)?(?:a\s+)?"
    rf"|(?P<word>{_alternation(w for w in _NUMBER_WORDS if w != 'hundred')})\s+)"
    r"(?:(?P<scale>million|mil|mm|thousand|k|billion|bn)\s*(?:usd[tc]?|dollars?|bucks|busd|fdusd)(?![a-z0-9])"
    r"|(?P<grand>grand)\b)(?:\s+worth)?(?:\s+of)?"
)

_SIZE_RE: Final = lazy_re(_quantity("q") + rf"\s*-?\s*\$?(?={_ASSET_ALT}(?![a-z0-9]))")
_SCALE_WORDS: Final[dict[str, int]] = {"hundred": 100, "thousand": 1_000, "million": 1_000_000}
_SIZE_WORDS_RE: Final = lazy_re(
    rf"\b(?:(?P<small>{_alternation(w for w in _NUMBER_WORDS if w not in ('a', 'an', 'hundred'))})\s+)?"
    rf"(?P<scale>hundred|thousand|million)?\s*(?=(?:{_ASSET_ALT})(?![a-z0-9]))"
)
_FRACTION_SIZE_RE: Final = lazy_re(
    rf"\b(?:(?P<half>half)|(?P<quarter>(?:a\s+)?quarter))\s+(?:of\s+)?an?\s+(?=(?:{_ASSET_ALT})(?![a-z0-9]))"
)
_SIZE_UNITS_RE: Final = lazy_re(_quantity("q") + r"\s*(?:coins?|tokens?|units?|contracts?|lots?)\b")
_SIZE_KEYWORD_RE: Final = lazy_re(
    r"\b(?:size|qty|quantity|amount)\s*(?:of|=|:|is)?\s*(?:-\s?)?" + _quantity("q")
)
#: A minus sign (or "minus") right before a quantity: "-5 btc", "size of -3", "-$150k", "minus 2 eth".
#: Not after a digit/letter ("5-10 btc" is a range, "btc-5" a name).
_NEGATIVE_BEFORE_RE: Final = lazy_re(r"(?:(?<![\w.,)\]])-|\bminus)\s?(?:\$|us\$|€|£)?\s?$")
_BARE_NUMBER_RE: Final = lazy_re(_quantity("q") + r"(?![\w.%])")

#: Phrases that contain buy/sell but do not give an order side.
_NOT_A_SIDE_RE: Final = lazy_re(
    r"\b(?:bid|ask|offer)s?[\s-]?(?:side|walls?|pressure)\b|\b(?:buy|sell)s?[\s-]?(?:walls?|pressure)\b"
    r"|\b(?:buy|sell)[\s-]?side\s+(?:depth|liquidity|of|book|pressure|volume|orders|imbalance|flow|size)\b"
    r"|\b(?:the|its|on\s+the)\s+(?:buy|sell)[\s-]?side\b(?!\s*(?:order|trade))|\bsell[\s-]?offs?\b|\bbuy[\s-]?backs?\b"
    r"|\bbuy(?:ing)?\s*(?:/|or|and|&)\s*sell(?:ing)?\b|\bsell(?:ing)?\s*(?:/|or|and|&)\s*buy(?:ing)?\b"
    r"|\bpump[\s-]?(?:and|&|n)[\s-]?dump\b"
)
#: An object after a verb that is also an everyday word ("dump 150k", "exit my ETH", "long 10 BTC").
_ORDER_OBJECT: Final = (
    r"(?=\s+(?:(?:my|all|all of|some|of|the|a|an|this|that|these|those|our|half|entire|whole|remaining|rest of)\s+)*"
    rf"(?:\$|\d|(?:{_ASSET_ALT})(?![a-z0-9])|positions?\b|bags?\b|holdings?\b|stack\b|coins?\b|tokens?\b|it\b|them\b))"
)
#: "can I" / "I can": a side verb after it has its object asked about ("how much btc can i lift").
_CAN_I: Final = r"\b(?:(?:can|could|may)\s+(?:i|we|you)|(?:i|we|you)\s+(?:can|could|may))"
#: Side verbs; the earliest match in the question wins.
_SIDE_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "buy",
        lazy_re(
            r"\b(?:buy|buys|buying|bought|purchas(?:e|es|ed|ing)|acquir(?:e|es|ed|ing)|accumulat(?:e|ing))\b"
        ),
    ),
    (
        "sell",
        lazy_re(
            r"\b(?:sell|sells|selling|sold|offload(?:s|ed|ing)?|unload(?:s|ed|ing)?|liquidat(?:e|es|ed|ing))\b"
        ),
    ),
    ("sell", lazy_re(r"\b(?:dump(?:s|ed|ing)?|exit(?:s|ed|ing)?|short(?:s|ed|ing)?)" + _ORDER_OBJECT)),
    ("buy", lazy_re(r"\b(?:long(?:s|ed|ing)?|lift(?:s|ed|ing)?)" + _ORDER_OBJECT)),
    ("buy", lazy_re(r"\b(?:lift(?:s|ing)?\s+(?:the\s+)?(?:offers?|asks?)|go(?:ing)?\s+long)\b")),
    # sweeping a side of the book takes its liquidity: the asks are bought, the bids sold
    ("buy", lazy_re(r"\bsweep(?:s|ing)?\s+(?:the\s+)?(?:asks?|offers?)\b")),
    ("sell", lazy_re(r"\bsweep(?:s|ing)?\s+(?:the\s+)?bids?\b")),
    # the verb at the end, its object asked about: "how much btc can i lift", "how many eth could we dump"
    ("buy", lazy_re(_CAN_I + r"\s+(?:lift|long|pick\s+up|scoop)\b")),
    ("sell", lazy_re(_CAN_I + r"\s+(?:dump|exit|short|hit|unwind|get\s+out)\b")),
    (
        "sell",
        lazy_re(
            r"\b(?:hit(?:s|ting)?\s+(?:the\s+)?bids?|go(?:ing)?\s+short|get(?:ting)?\s+(?:rid|out)\s+of)\b"
        ),
    ),
    (
        "buy",
        lazy_re(rf"(?<![a-z0-9])(?:{_ASSET_ALT})\s+long\b(?=\s+(?:position|order|trade)|\s*[?.!,]|\s*$)"),
    ),
    (
        "sell",
        lazy_re(rf"(?<![a-z0-9])(?:{_ASSET_ALT})\s+short\b(?=\s+(?:position|order|trade)|\s*[?.!,]|\s*$)"),
    ),
)
_SIDE_VERB_NUMBER_RE: Final = lazy_re(
    r"\b(?:buy|buying|sell|selling|dump|dumping|offload|unload|purchase|short|long|route|split)\s+(?:another\s+)?"
    r"(?:-\s?)?" + _quantity("q")
)


#: Less common ways to ask to be notified, for both the alerts cue and a rule's creation: "buzz me when
#: ...", "page us if ...", "flag it if ...".
_NOTIFY_MORE: Final = (
    r"\b(?:buzz|page|nudge|remind|holler\s+at|shout\s+at)\s+(?:me|us)\b"
    r"|\bflag\s+(?:it\s+|me\s+|us\s+|this\s+|that\s+)?(?:if|when|once|whenever|as\s+soon\s+as)\b"
)
#: Alert events that happened (``liquidity_alerts``), not the rules set: "which of my alerts fired".
_ALERT_FIRED_RE: Final = lazy_re(r"\b(?:fired|firing|fires|triggered|went\s+off|tripped|popped)\b")


def _any_of(*fragments: str) -> re.Pattern[str]:
    """Compile regex ``fragments`` as one alternation, so tables below list one idea per entry."""
    return lazy_re("|".join(f"(?:{f})" for f in fragments))


# Cue and refusal tables are kept compact by hand: one regex fragment per idea, several per line.
# fmt: off
#: Capability cue words, by name. :data:`_RULES` combines them with the extracted arguments.
_CUES: Final[dict[str, re.Pattern[str]]] = {
    "alerts": _any_of(
        r"\balert", r"\balarm", r"\banomal", r"\bcrunch", r"\bnotif(?:y|ication)", r"\b(?:msg|dm|sms|txt|text|email|message)\s+(?:me|us)\b", r"\bwarn(?:\s+(?:me|us)|ings?)\b",
        r"\blet\s+(?:me|us)\s+know\b", r"\bping\s+me\b", r"\bheads[\s-]?up\b", r"\btell\s+me\s+(?:when|if)\b", _NOTIFY_MORE,
        r"\bkeep\s+an\s+eye\b", r"\bwatch\s+(?:for|out)\b", r"\bunusual\b", r"\babnormal", r"\bweird\b",
        r"\bsomething\s+(?:weird|odd|off|wrong|strange)", r"\bsuspicious", r"\bspoof", r"\bmanipulat",
        r"\bpump[\s-]?(?:and|&|n)[\s-]?dump", r"\bflash[\s-]?crash", r"\bdr(?:ied|y|ying)\s+up\b",
        r"\bliquidity\s+(?:drops?|crash|collapse|crisis|shocks?|holes?|gaps?|vanish\w*)\b",
        r"\b(?:liquidity|liq|depth)\s+events?\b",
        r"\b(?:liquidity|liq|depth)\s+(?:\w+\s+){0,3}(?:collaps\w*|crash(?:ed|es)?|evaporat\w*|vanish\w*|dr(?:ied|y)\s+up)\b",
        r"\b(?:what|anything|something|which)\s+(?:has\s+|have\s+)?(?:fired|triggered|went\s+off|tripped)\b",
        # a liquidity word next to a word for its sudden loss, either order: "depth collapses",
        # "did the book thin out", "liquidity evaporated", "sudden drop in depth"
        r"\b(?:liquidity|liq|depth|book|bids?|asks?|offers?)\s+(?:\w+\s+)?(?:collaps\w*|crash\w*|crunch\w*"
        r"|evaporat\w*|vanish\w*|disappear\w*|dr(?:ied|ying|y)\s+up|thin(?:ned|ning)?\s+out|gaps?|holes?)\b",
        r"\b(?:collapse|crash|drop|plunge|evaporation|vanishing|disappearance|hole|gap)s?\s+in\s+(?:the\s+)?"
        r"(?:\w+\s+)?(?:liquidity|depth|book)\b(?![\s-]+(?:streams?|feeds?|channels?|updates|data|messages|sequence))",
    ),
    "health": _any_of(
        r"circuit[\s-]?breakers?", r"\bbreakers?\b", r"\bcbs?\s+(?:open|trip)", r"\bstale\b",
        r"\b(?:dis|re)?connect(?:s|ed|ing|ion|ions|ivity)?\b", r"\buptime\b", r"\bdowntime\b", r"\boutages?\b",
        r"\blatenc", r"\bthrottl", r"\bheartbeats?\b", r"\bwebsockets?\b", r"\bfeeds?\b", r"\bstatus\b",
        r"\brate[\s-]?limit", r"\bhealth[\s-]?checks?\b", r"\bping\b(?!\s+me)",
        r"^\W*(?:venue|exchange|feed|system|data)?\s*health\W*$",
        # freshness of the data: "how old is the okx book", "last update from kraken", "is it lagging"
        r"\bhow\s+(?:old|fresh|recent|up[\s-]?to[\s-]?date)\b", r"\bage\s+of\b", r"\bfresh(?:ness)?\b",
        r"\b(?:last|latest|most\s+recent)\s+(?:\w+\s+){0,2}(?:updates?|messages?|ticks?|snapshots?)\b",
        r"\bcrossed\b", r"\bresync", r"\blagg?(?:ing|ed|y)\b", r"\bdelayed\b", r"\b(?:de|re)?sync(?:ed|ing|hroni[sz]ed)?\b", r"\bout[\s-]+of[\s-]+sync\b",
        r"\bseq(?:uence)?(?:[\s-]+(?:nums?|numbers?|ids?))?[\s-]+(?:gaps?|breaks?|errors?|jumps?)\b",
        r"\bgaps?\b[^.?!]{0,30}\b(?:sequence|seq|updates|deltas|streams?|feeds?|channels?|ws|websockets?)\b",
        r"\bchecksums?\b",
        r"\b(?:miss(?:ed|ing)?|drop(?:ped|ping|s)?|los(?:t|ing))\s+(?:updates|messages|msgs|deltas|diffs|packets|frames)\b",
        r"\bws\b",
    ),
    # Weak health words count only about venues, never about an asset ("is BTC down?").
    "health_weak": _any_of(
        r"\bhealth(?:y)?\b", r"\bup\b", r"\bdown\b", r"\bonline\b", r"\boffline\b", r"\bworking\b",
        r"\brunning\b", r"\breachable\b", r"\brespon(?:sive|ding|ds)\b", r"\balive\b", r"\bbroken\b",
        r"\btiming\s+out\b", r"\btime[\s-]?outs?\b", r"\berror(?:s|ing)?\b", r"\bflaky\b",
        r"\b(?:issues|problems|trouble|degraded|glitch\w*|hiccups?)\b",
    ),
    "venue_words": _any_of(r"\b(?:exchanges?|venues?|apis?|systems?|services?|servers?|everything)\b"),
    "pairs": _any_of(
        r"hedge[\s-]?ratio", r"\bz[\s-]?scores?\b", r"\bzscores?\b", r"cointegrat", r"\badf\b", r"dickey",
        r"stationar", r"correlat", r"\bcovarian", r"\bbeta\b", r"\bhalf[\s-]?life\b", r"\bpairs?[\s-]?trad",
        r"\bpairs?\s+(?:analysis|stats|statistics)\b", r"\bstat(?:istical)?[\s-]?arb", r"mean[\s-]?revert",
        r"mean[\s-]?reversion", r"\bspread\s+trad", r"\bengle\b", r"\bgranger\b", r"\bjohansen\b",
        r"\bz\b", r"\bphillips[\s-]?ouliaris\b", r"\bkpss\b", r"\bou\s+process\b", r"\bornstein",
    ),
    # Weak pairs words need two assets and a joining word: "spread between BTC and ETH".
    "pairs_weak": _any_of(
        r"\bspre+a?ds?\b", r"\bratio\b", r"\brelative\b", r"\brelationship\b", r"\bco[\s-]?move",
        r"\bmove\s+together\b", r"\btrack\s+each\s+other\b", r"\bdivergen", r"\bdecoupl", r"\bhedg(?:e|es|ed|ing)\b",
    ),
    # Pairs words that count only with two assets named: "pairs eth sol 90d", "corr btc eth 30d".
    "pairs_two": _any_of(r"\bpairs?\b(?![\s-]+(?:listed|available|supported|on|at|traded))", r"\bcorr(?:el)?\b", r"\bcoint\b",
        r"\bco[\s-]?mov", r"\bmove\s+together\b", r"\btrack\s+each\s+other\b", r"\bdecoupl"),
    "pairs_joint": _any_of(r"\b(?:between|vs\.?|versus|against|relative|from|with|to\s+hedge|hedg\w*)\b"),
    "backtest": _any_of(
        r"back[\s-]?test", r"\bhistorically\b", r"\bif\s+i\s+(?:had|'d)\b", r"\bin\s+hindsight\b", r"\breplay",
        r"\bhistorical\s+(?:slippage|costs?|execution|impact|fills?|performance)",
    ),
    # Weak backtest words need an order: "how would buying 500 SOL have performed".
    "backtest_weak": _any_of(
        r"\bwould(?:'ve|\s+have)\b", r"\bhow\s+did\b", r"\bwhat\s+did\b", r"\bhad\s+i\b",
        r"\bhave\s+(?:performed|cost|done|been|gone|filled|worked|paid|slipped|fared)\b",
    ),
    "route": _any_of(
        r"\brout(?:e|es|ed|ing|er)\b", r"\brte\b", r"smart[\s-]?(?:order[\s-]?)?rout", r"\bsor\b", r"\bsplit(?:s|ting)?\b",
        r"\bslic(?:e|es|ed|ing)\b", r"\b(?:chop|carv|dic)(?:e|s|es|ped|ed|ping|ing)?\s+up\b", r"\bfan(?:s|ned|ning)?\s+(?:it\s+)?out\b", r"\bchunks?\b", r"\bdistribut(?:e|ing)\b", r"\ballocat", r"\bdivide",
        r"\bbreak\s+(?:it|the\s+order)\s+up", r"\bbreak(?:s|ing)?\s+up\b",
        # how much of one order each venue gets: "which exchanges should get how much of my 20 btc buy"
        r"\b(?:venues?|exchanges?|books?)\s+should\s+(?:get|take|receive|fill)\b",
        r"\bhow\s+much\s+(?:should\s+)?(?:go(?:es)?|to\s+send)\s+(?:to|on)\s+(?:each|every)\b", r"\bbest\s+execution\b",
        # "work a 300 eth buy across okx and bybit": working an order is executing it in pieces
        r"\bwork(?:s|ing)?\s+(?:a|an|the|my|this|that)\b[^.?!]{0,25}\b(?:order|buy|sell|clip|ticket|trade|block)\b",
        r"\bspread\s+(?:it|this|that|(?:the|my|a|an)\s+(?:[^.?!\s]+\s+){0,3}?(?:order|trade|buy|sell|clip))\s+(?:across|over|between)",
    ),
    "across_venues": _any_of(
        r"\bacross\b[^.?!]{0,20}\b(?:venues|exchanges|markets|books)\b", r"\bacross\s+all\b",
        r"\b(?:on|over|to)\s+(?:all|multiple|several)\s+(?:the\s+)?(?:venues|exchanges)\b",
        r"\b(?:all|every|each)\s+(?:the\s+|of\s+the\s+)?(?:venues|exchanges)\b",
    ),
    # Weak compare words ask for a venue only when the question does not name exactly one
    # ("where should I sell 10 BTC?" vs "where does the VWAP land on OKX?").
    "compare_weak": _any_of(r"\bwhere\b"),
    "compare": _any_of(
        r"\bwho(?:'s|\s+has|\s+have|\s+offers?|\s+gives?|\s+is)\b[^.?!]{0,25}\b(?:best|cheapest|deepest|tightest"
        r"|lowest|highest|most\s+liquid)\b",
        r"\bbest\s+(?:price|bid|ask|offer|quote|fill|rate)s?\b[^.?!]{0,30}\b(?:anywhere|across|among|any\s+venue)",
        r"\bcompar", r"\bcmp\b", r"\bwhich\s+(?:venue|exchange|market|platform|place|one|book|cex)s?\b",
        r"\bbest\s+(?:venue|exchange|place|market|platform|book|cex)s?\b",
        r"\bcheapest\b", r"\barbitrage", r"\barbs?\b", r"\brank",
        # a superlative of a venue: "lowest cost venue", "least slippage exchange", "most liquid market"
        r"\b(?:best|cheapest|lowest|least|deepest|tightest|optimal|most\s+liquid)(?:[\s-]+[a-z]+){0,2}[\s-]+"
        r"(?:venues?|exchanges?|markets?|places?|platforms?|cexs?)\b",
        r"\bmost\s+liquid\s+(?:venue|exchange|market|place)", r"\bdeepest\s+(?:\w+\s+)?(?:venue|exchange|market|book)",
        r"\btightest\s+(?:venue|exchange|market)", r"\bbetter\s+(?:venue|exchange|place)",
        r"\b(?:venue|exchange)\s+(?:comparison|breakdown)",
        # the same order costed venue by venue: "cost of buying 3 BTC on every venue", "per exchange"
        r"\b(?:on|at|for|in|across)\s+(?:every|each)\s+(?:venue|exchange|market)\b", r"\bper[\s-](?:venue|exchange)\b",
        # "eth usdc vs usdt books, which is tighter": a comparative asked between books
        r"\bwhich\s+(?:is|has|one\s+is|one\s+has|are)\s+(?:the\s+)?(?:tighter|deeper|cheaper|better|thicker|thinner"
        r"|wider|more\s+liquid)\b",
        # a superlative sought over every venue: "tightest btc spread anywhere?", "deepest book on any exchange"
        r"\b(?:best|cheapest|tightest|deepest|thickest|lowest|highest|most\s+liquid)\b[^.?!]{0,40}"
        r"\b(?:anywhere|any\s+(?:venue|exchange|market)|on\s+any\s+\w+)\b",
        # one venue against all the others: "how does okx stack up", "kraken vs the rest"
        r"\bstacks?\s+up\b", r"\bmeasures?\s+up\b",
        r"\b(?:better|cheaper|deeper|tighter|worse)\s+than\s+(?:all\s+)?(?:the\s+)?(?:others|rest|field|competition"
        r"|everyone(?:\s+else)?|everybody(?:\s+else)?|anyone(?:\s+else)?|any\s+other|other\s+(?:venues|exchanges|books|markets))\b",
        r"\b(?:beat|beats|outperform\w*|outdo\w*)\s+(?:all\s+)?(?:the\s+)?(?:others|rest|field|competition|everyone"
        r"|everybody|other\s+(?:venues|exchanges|books|markets))\b",
        r"\b(?:vs\.?|versus|against|compared\s+(?:to|with)|relative\s+to)\s+(?:all\s+)?(?:the\s+)?(?:others|rest|field"
        r"|competition|everyone|everybody|other\s+(?:venues|exchanges|books|markets))\b",
    ),
    "impact": _any_of(
        r"\bslip+a?ge?", r"\bslip(?:s|ped)?\b", r"\bimpact", r"\bcost(?:s|ing)?\b", r"\bexpensive\b",
        r"\bfees?\b", r"\benough\s+(?:liquidity|depth)\b", r"\babsorb", r"\bhandle\b",
        r"\bfill(?:s|ed|ing)?\b", r"\bvwap\b", r"\bexecut(?:e|ing)\b", r"\bexecution\s+(?:price|cost|quality)",
        r"\beffective\s+price", r"\bav(?:era)?ge?\s+(?:fill\s+|execution\s+)?price",
        r"\bmarket\s+(?:buy|sell|order)s?\b", r"\bmove\s+the\s+(?:market|price|book)",
        r"\bwalk(?:ing)?\s+(?:the|up|down)\s+(?:the\s+)?book", r"\beat(?:ing)?\s+(?:through|into)",
        r"\bhow\s+much\s+(?:would|will)\b",
        r"\bwhat\s+(?:would|will|do|does)\s+(?:i|it|that)\s+(?:pay|get|cost)",
        r"\bcan\s+(?:i|you|we)\s+(?:buy|sell|dump|offload|unload|get|execute|fill|purchase)\b",
    ),
    "history": _any_of(
        r"vol[ai]til", r"\bvol\b", r"\btrend", r"\bprice\s+history", r"\bhistor(?:y|ical)\b",
        r"\bprice\s+action\b", r"\bperform(?:ance|ed|ing)?\b", r"\bcharts?\b", r"\bcandles?\b", r"\bohlcv?\b",
        r"\breturns?\b", r"\bdrawdowns?\b", r"\batr\b", r"\branges?\b", r"\bswings?\b",
        r"\bmove(?:d|ment|ments)?\b", r"\bgain(?:ed|s)?\b", r"\bchanged?\b", r"\brall(?:y|ied)\b",
        r"\bpump(?:ed)?\b", r"\bcrash(?:ed)?\b", r"\bsell[\s-]?off\b", r"\bdip\b",
        r"\bhow\s+(?:has|have|did)\b", r"\bhighs?\s+(?:and|&|/)\s+lows?\b", r"\bup\s+or\s+down\b",
        r"\bprice\s+over\b",
    ),
    "order_book": _any_of(
        r"\bspre+a?ds?\b", r"\bdepth", r"\bdeep\b", r"\bshallow\b", r"\bor?der[\s-]?books?\b", r"\bbooks?\b",
        r"\bl2\b", r"\bliqu?idi?t?y\b", r"\bliquid\b", r"\billiquid\b", r"\bimbalance", r"\bbids?\b",
        r"\basks?\b", r"\boffers?\b", r"\btop\s+of\s+(?:the\s+)?book\b", r"\btob\b", r"\bbbo\b",
        r"\bmid(?:[\s-]?price|point)?\b", r"\bmicro[\s-]?price", r"\bprices?\b", r"\bquotes?\b", r"\bthin\b",
        r"\bthick\b", r"\bwide\b", r"\btight\b", r"\blevels?\b", r"\bsnapshot", r"\bladder",
    ),
    "flip": _any_of(r"\b(?:other|opposite)\s+(?:side|way|direction)\b", r"\bflip\b", r"\breverse\b"),
    "definitional": _any_of(
        r"^(?:what|who)(?:\s+is|\s+are|'s|\s+was|\s+created|\s+invented)\b", r"^(?:explain|define|describe)\b",
    ),
}

_OFF_TOPIC: Final = "off_topic: not a market-liquidity question I can answer with my tools"
_EMPTY: Final = "empty: no question was asked"
_SMALLTALK: Final = "smalltalk: a greeting or a question about the assistant; answer with what it can do"
_SMALLTALK_RE: Final = lazy_re(
    r"^(?:hi|hello|hey|yo|gm|thanks?|thank\s+you|cheers|help|who\s+are\s+you|who\s+made\s+you"
    r"|what\s+(?:can|do)\s+you\s+do|how\s+do(?:es)?\s+(?:this|it|you)\s+work|tell\s+me\s+about\s+yourself)\b"
)
_IMPERATIVE: Final = r"^(?:please\s+|pls\s+|(?:can|could|would)\s+you\s+|go\s+ahead\s+and\s+|just\s+|now\s+)?"

#: Refusals, checked before anything else: (code, explanation, pattern).
_REFUSALS: Final[tuple[tuple[str, str, re.Pattern[str]], ...]] = (
    (
        "prompt_injection",
        "the message tries to override or reveal the assistant's instructions",
        _any_of(
            r"\b(?:ignore|disregard|forget|override|bypass)\b[^.?!]{0,40}\b(?:instructions?|prompts?|rules"
            r"|directions|guidelines|guardrails|above|previous|prior|context|everything)\b",
            r"\bsystem\s+(?:prompt|message|instructions?)\b",
            r"\b(?:your|the)\s+(?:initial\s+|original\s+|hidden\s+|secret\s+)?(?:prompt|instructions)\b",
            r"\bnew\s+instructions\b", r"\bjailbreak", r"\bdeveloper\s+mode\b", r"\bdan\s+mode\b",
            r"\byou\s+are\s+now\b", r"\bpretend\s+(?:to\s+be|you)\b", r"\bact\s+as\b", r"\brole[\s-]?play",
            r"\breveal\s+(?:your|the)\b", r"\brepeat\s+(?:the|everything|all)\b[^.?!]{0,20}\babove\b",
            r"<\|[a-z_]+\|>", r"\[/?inst\]",
        ),
    ),
    (
        "credentials",
        "the message asks for keys, secrets or account access",
        _any_of(
            r"\bapi[\s-]?keys?\b", r"\bsecret\s+keys?\b", r"\b(?:your|api|client|app)\s+secrets?\b",
            r"\bprivate\s+keys?\b", r"\bseed\s+phrase", r"\bmnemonic\b", r"\bpasswords?\b",
            r"\bcredentials?\b", r"\benv(?:ironment)?\s+var", r"\b\.env\b", r"\baccess\s+tokens?\b",
        ),
    ),
    (
        "trade_execution",
        "the assistant analyses liquidity and never places, cancels or transfers anything",
        _any_of(
            r"\b(?:real|live)\s+(?:money\s+)?(?:orders?|trades?)\b", r"\breal\s+money\b",
            _IMPERATIVE + r"(?:buy|sell|trade|execute|place|submit|short|long|dump)\b[^.?!]{0,40}\bfor\s+me\b",
            r"\b(?:place|submit|put\s+in|fire\s+off)\b[^.?!]{0,40}\bfor\s+me\b",
            # "buy me 3 eth", "sell 2 btc right now on kraken" (no question asked)
            _IMPERATIVE + r"(?:buy|sell|short|long|dump|ape)\s+me\b",
            _IMPERATIVE + r"(?:market\s+)?(?:buy|sell|short|long|dump|ape)\b[^.?!]{0,40}"
            r"\b(?:right\s+now|immediately|asap|right\s+away)\b(?![^?]*\?)",
            _IMPERATIVE + r"(?:place|submit|execute|put\s+in|fire\s+off)\b[^.?!]{0,60}"
            r"\b(?:orders?(?!\s*-?\s*books?)|trades?|positions?|buy|sell)\b",
            r"\bon\s+my\s+behalf\b", r"\bmy\s+(?:\w+\s+)?account\b", r"\bwithdraw", r"\bdeposit\b",
            r"\btransfer\s+(?:my|the|funds|coins|\d)", r"\b(?:lend|loan|gift|donate)\s+(?:me|us|him|her|them)\b",
            r"\b(?:send|transfer|move|withdraw)\b[^.?!]{0,40}\b(?:address|wallet|cold\s+storage|bank)\b", r"\bcancel\s+(?:my|all|the)\s+orders?\b",
        ),
    ),
    (
        # Spoofing, layering, wash trades, pump-and-dump, front-running, quote stuffing, painting
        # the tape: manipulative practices (e.g. MiFID II MAR art. 12, CFTC 7 U.S.C. 6c(a)(5)(C)).
        "market_manipulation",
        "the assistant does not help manipulate markets (spoofing, layering, wash trading, pump-and-dump, front-running)",
        _any_of(
            r"\bspoof(?:s|ed|ing|er)?\b", r"\blayering\b", r"\bwash[\s-]?trad(?:e|es|ed|ing)\b",
            # "pump and dump on DOGE?" asks whether one happened (alerts); running one is refused
            r"\b(?:run|do|start|organi[sz]e|coordinate|set\s+up|plan|pull\s+off)\s+(?:a\s+|an?\s+\w+\s+)?pump[\s-]+(?:and|&|n)[\s-]+dump\b",
            r"\bfront[\s-]?run(?:s|ning)?\b", r"\bquote\s+stuffing\b",
            r"\bpaint(?:ing)?\s+the\s+tape\b", r"\bmanipulat(?:e|es|ing|ion)\b",
            r"\bfake\s+(?:walls?|orders?|bids?|asks?|volume|liquidity)\b",
            r"\b(?:inflate|fake)\s+(?:the\s+)?volume\b",
            r"\bhow\s+(?:do|can|to|could|should)\s+(?:i\s+|we\s+)?pump\b", r"\bpump\s+the\s+price\b",
        ),
    ),
    (
        "investment_advice",
        "the assistant gives no investment advice or price predictions",
        _any_of(
            r"\b(?:should|could)\s+(?:i|we)\s+(?:put|move|park|throw|stick)\b[^.?!]{0,40}\binto\b",
            r"\b(?:good|bad|smart)\s+idea\s+to\s+(?:put|move|invest|buy|sell)\b",
            r"\bmy\s+(?:savings|pension|retirement|life\s+savings)\b",
            r"(?<!where\s)(?<!which\s)\bshould\s+(?:i|we)\s+(?:buy|sell|invest|hold|hodl|short|long|go\s+(?:long|short)|get\s+into|ape)\b",
            r"\bgood\s+(?:time\s+to\s+(?:buy|sell)|investment|buy|entry)\b",
            r"\bworth\s+(?:buying|investing|holding)\b",
            r"\bwill\b[^.?!]{0,40}\b(?:go(?:ing)?\s+(?:up|down)|moon|pump|crash|rise|fall|rally|dump|recover|hit\s+\$?\d)",
            r"\bgoing\s+to\s+(?:go\s+up|go\s+down|moon|pump|crash|rise|fall|rally|dump|hit)\b",
            r"\bprice\s+(?:prediction|forecast|target)s?\b", r"\bpredict", r"\bforecast",
            r"\bfinancial\s+advice\b", r"\bto\s+the\s+moon\b",
            r"\b(?:which|what)\s+(?:coin|token|crypto|altcoin)s?\s+(?:should|to)\b",
            r"\bbest\s+(?:coin|token|crypto|altcoin)s?\b", r"\b(?:buy|sell|hold)\s+or\s+(?:buy|sell|hold)\b",
            # how to take a leveraged position is trading advice, not a liquidity question
            r"\b\d+(?:\.\d+)?x\s+leverage\b", r"\bleverag(?:e|ed|ing)\b", r"\bhow\s+(?:do|can|should)\s+(?:i|we)\s+(?:short|long|margin)\b",
        ),
    ),
    (
        "off_topic",
        "not a market-liquidity question I can answer with my tools",
        _any_of(
            r"\b(?:weather|jokes?|poems?|haiku|limerick|story|stories|song|lyrics|recipes?|cook(?:ing)?|movies?"
            r"|films?|football|soccer|homework|essay|translate|horoscope|girlfriend|boyfriend|president|capital\s+of"
            r"|news|headlines?|gossip|rumou?rs?)\b",
        ),
    ),
)
# fmt: on

#: Lead-ins that mark a follow-up to the previous question.
_FOLLOW_UP_LEAD_RE: Final = lazy_re(
    r"^(?:ok(?:ay)?|cool|thanks|great|and|also|now|then|but|so)?[\s,]*"
    r"(?:and|also|now|then|but|what\s+about|how\s+about|what\s+if|same\s+(?:for|on|with|but|thing)|same|instead|try"
    r"|plus|add|do\s+(?:it|that|the\s+same))\b"
)
_INSTEAD_RE: Final = lazy_re(r"\binstead\b|\brather\b")
_ANAPHORA_RE: Final = lazy_re(r"\b(?:it|that|this|them|those|the\s+same)\b")
_ADDITIVE_RE: Final = lazy_re(r"^\s*(?:and|also|plus|add)\b|\b(?:too|as\s+well|also)\b")

#: Names a typo may be repaired to (short tickers are never guessed).
#: Capability words repaired like names ("alrts", "slipage", "liquidty", "volatilty").
_FUZZY_WORDS: Final[tuple[str, ...]] = (
    "alerts", "slippage", "backtest", "liquidity", "imbalance", "volatility", "cointegration", "health",
)  # fmt: skip
_FUZZY_TARGETS: Final[tuple[str, ...]] = tuple(
    sorted({a for a in (*_ALIAS_TO_TICKER, *_VENUE_ALIAS, *_FUZZY_WORDS) if len(a) >= 5 and a.isalpha()})
)
#: Everyday words one edit away from a name above; never "repaired".
_FUZZY_STOPWORDS: Final[frozenset[str]] = frozenset(
    {"finance", "either", "tether", "ethers", "balance", "polygons", "breaker", "others", "gemina"}
)


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------


@dataclass
class _Extraction:
    """Everything the question states, before the capability decides which arguments it keeps."""

    low: str
    cues: frozenset[str] = frozenset()
    mentions: list[tuple[int, str, str, str | None]] = field(
        default_factory=list
    )  # (pos, unified, base, quote)
    venues: list[str] = field(default_factory=list)
    all_venues: bool = False
    side: str | None = None
    size: int | float | None = None
    notional: int | float | None = None
    window_bps: int | float | None = None
    lookback_days: int | float | None = None
    lookback_hours: int | float | None = None
    timeframe: str | None = None
    bare_number: int | float | None = None
    #: a size or notional written negative or zero, as written ("-5 btc", "0 eth"): not an order
    bad_quantity: str | None = None
    #: the bare number written negative or zero ("what about -3?"): bad only where it is the size
    bad_bare_number: str | None = None
    #: the bare number was written with a minus sign ("imbalance below -0.5"): kept for thresholds
    bare_negative: bool = False
    #: the bare number was written as an amount, with a multiplier or thousands commas ("1k", "2,500")
    bare_scaled: bool = False
    #: "the largest size within N bps of slippage": the limit N (bps)
    max_slippage_bps: int | float | None = None
    #: perpetual / inverse wording ("BTCUSDT perp", "coin-margined")
    perp: bool = False
    inverse: bool = False
    #: how a backtested order is executed: "twap" / "vwap" when the question says so
    schedule: str | None = None
    #: a percentage written as a relative fall ("a 30% drop", "falls by 40%"), as the fraction of the
    #: level that remains (0.7, 0.6): ``liquidity_alerts``' ``drop_ratio``, never a depth window
    drop_ratio: float | None = None
    #: a point in time the question names ("at 2024-09-01 12:00 UTC"), ISO 8601 UTC
    at: str | None = None
    #: every time written, in text order: (start, end, ISO 8601 UTC)
    times: list[tuple[int, int, str]] = field(default_factory=list)
    #: a span written "from T1 to T2" / "between T1 and T2": the history's ``start``/``end``
    range: tuple[str, str] | None = None
    #: venues the question leaves out ("exclude okx", "leave out bybit", "not on gate")
    exclude_venues: list[str] = field(default_factory=list)
    #: the book instant asked ("at 23:58 UTC on 8 Aug"), in the form ``services.books.parse_as_of``
    #: reads: ISO 8601 UTC, ``end-300s``, ``--08-08T23:58:00Z`` (no year), ``T23:58:00Z`` (no day)
    as_of: str | None = None

    @property
    def symbol(self) -> str | None:
        """First asset named, upgraded to a unified pair when the question names one for that base."""
        if not self.mentions:
            return None
        _, unified, base, _ = self.mentions[0]
        pairs = [m[1] for m in self.mentions if m[3] is not None and m[2] == base]
        return pairs[0] if pairs else unified

    @property
    def legs(self) -> list[str]:
        """Assets for a pairs question, in mention order: "ETH/BTC" is two legs, "SOL/USDT" one."""
        legs: list[str] = []
        for _, unified, base, quote in self.mentions:
            parts = [base, quote] if quote in _CRYPTO_QUOTES else [unified]
            legs.extend(p for p in parts if p not in legs)
        # "how many BTC to hedge 100 ETH", "hedge my SOL with ETH": the hedged asset is the dependent leg
        hedged = re.search(
            r"\bhedg(?:e|es|ed|ing)\s+(?:my\s+|a\s+|the\s+|an?\s+)?(?:[\d.,]+\s*[kmb]?\s*)?\$?(?P<a>[a-z]+)",
            self.low,
        )
        if hedged and len(legs) >= 2:
            target = _ALIAS_TO_TICKER.get(hedged.group("a"))
            if target in legs and legs[0] != target:
                legs.remove(target)
                legs.insert(0, target)
        return legs

    @property
    def has_order(self) -> bool:
        return self.side is not None or self.size is not None or self.notional is not None

    @property
    def has_quantity(self) -> bool:
        return self.size is not None or self.notional is not None

    def has(self, *names: str) -> bool:
        return any(n in self.cues for n in names)


def _number(num: str, mult: str | None = None, scale: int = 1) -> int | float:
    """``"1,500"`` -> 1500, ``"2.5"`` -> 2.5, ``("1.5", "k")`` -> 1500, ``("0.5", None, 100)`` -> 50.

    The result is an int when it is whole and either written without a point or scaled (by a
    multiplier or ``scale``), so "2.0 BTC" stays 2.0 as written while "1.5k" is 1500.
    """
    digits = num.replace(",", "").replace(" ", "")
    factor = _MULTIPLIERS.get((mult or "").lower(), 1) * scale
    value = Decimal(digits) * factor
    if value == value.to_integral_value() and ("." not in digits or factor != 1):
        return int(value)
    return float(value)


def _quantity_value(m: re.Match[str], tag: str = "q") -> int | float:
    return _number(m.group(f"{tag}num"), m.group(f"{tag}mult") or m.group(f"{tag}multw"))


def _mask(text: str, start: int, end: int) -> str:
    """Blank ``text[start:end]`` keeping positions stable, so later regexes cannot re-read it."""
    return text[:start] + " " * (end - start) + text[end:]


@functools.lru_cache(maxsize=1024)
def _normalise(text: str) -> str:
    """ASCII punctuation, single spaces, and typo'd venue/asset names repaired (``etherum``).

    A pure function of ``text``, remembered: the offline model parses the conversation again at
    each of its turns, and the typo repair (difflib per 5+ letter word) was half of a parse."""
    table = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " "})
    text = " ".join(text.translate(table).split())
    # argument names typed as such ("crosses_above", "depth_notional", "liquidity_history") read as words
    # (not inside a chat-template token such as "<|im_start|>", which the injection check reads)
    text = re.sub(r"(?<=[A-Za-z])_(?=[A-Za-z])(?![A-Za-z_]*\|>)", " ", text)

    def repair(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        if low in _FUZZY_STOPWORDS or low in _FUZZY_TARGETS:
            return word
        # one edit in a 7+ letter word ("etherium", "bitcion") scores ~0.86; shorter words need 0.88
        close = difflib.get_close_matches(low, _FUZZY_TARGETS, n=1, cutoff=0.85 if len(low) >= 7 else 0.88)
        return close[0] if close else word

    return re.sub(r"\b[A-Za-z]{5,}\b", repair, text)


def _lower(text: str) -> str:
    """Lower-case without changing the length (a few Unicode letters grow when lowered)."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _timeframe(num: str, unit: str) -> str:
    letter = _UNIT_LETTER[unit]
    return f"{int(num)}{'M' if letter == 'mo' else letter}"


def _extract_timeframe(ex: _Extraction, work: str) -> str:
    """Candle resolution: "1h candles", "on the 4h", "hourly"."""
    for regex in (_TIMEFRAME_CANDLE_RE, _TIMEFRAME_ON_RE):
        for m in regex.finditer(work):
            ex.timeframe = ex.timeframe or _timeframe(m.group("num"), m.group("unit"))
            work = _mask(work, *m.span())
    for m in _TIMEFRAME_ADJ_RE.finditer(work):
        ex.timeframe = ex.timeframe or _TIMEFRAME_ADJECTIVES[m.group("adj")]
    return work


def _set_lookback(ex: _Extraction, count: Decimal | None, unit: str, prefixed: bool, compact: bool) -> None:
    """Record one duration: days-like units -> ``lookback_days``; hours -> days when a multiple of 24,
    else ``lookback_hours``; "last hour" (no count) and minutes are recency words, not lookbacks.
    A bare "15 minute" or "4h" with no "last/past" is a candle resolution."""
    letter = _UNIT_LETTER[unit]
    if letter == "m":
        if not prefixed and count is not None:
            ex.timeframe = ex.timeframe or f"{int(count)}m"
        return
    if letter == "h":
        if count is None:
            return
        if compact and not prefixed and count < 24:
            ex.timeframe = ex.timeframe or f"{int(count)}h"
        elif count % 24 == 0:
            ex.lookback_days = ex.lookback_days or _number(str(count / 24))
        else:
            ex.lookback_hours = ex.lookback_hours or _number(str(count))
        return
    days = (count if count is not None else Decimal(1)) * _DAYS_PER_UNIT[letter]
    if ex.lookback_days is None:
        ex.lookback_days = _number(format(days, "f"))


def _extract_lookback(ex: _Extraction, work: str) -> str:
    """Lookbacks: "last 7 days", "past 24 hours" (1 day), "last week", "2 weeks", "7d", "yesterday"."""
    for m in _LOOKBACK_COMPACT_RE.finditer(work):
        prefixed = bool(m.group("prefix"))
        _set_lookback(ex, Decimal(m.group("num")), m.group("unit"), prefixed, compact=True)
        work = _mask(work, *m.span())
    for m in _LOOKBACK_WORDS_RE.finditer(work):
        prefix, num, word = m.group("prefix") or "", m.group("num"), m.group("word")
        recency = bool(re.search(r"last|past|previous|prior|trailing|recent|this", prefix))
        if num is None and word is None and not recency:
            continue  # "day trading", "per hour": a unit without a count is not a lookback
        count = Decimal(num) if num else Decimal(_NUMBER_WORDS.get(word, 2)) if word else None
        _set_lookback(ex, count, m.group("unit"), bool(prefix), compact=False)
        work = _mask(work, *m.span())
    for m in _YESTERDAY_RE.finditer(work):
        ex.lookback_days = ex.lookback_days or 1
        work = _mask(work, *m.span())
    return work


def _extract_time(ex: _Extraction, work: str) -> str:
    """A point in time, as ISO 8601 UTC ``YYYY-MM-DDTHH:MM:SSZ`` (no clock: midnight; times are
    UTC, the data's own zone, unless written with an offset: "10:00+02:00" is 08:00Z). Read first, so no part of a date is taken for a size or a timeframe."""
    for regex in _TIME_RES:
        for m in regex.finditer(work):
            month = (
                int(m.group("m"))
                if "m" in regex.groupindex and m.group("m")
                else _MONTHS.get((m.groupdict().get("mon") or "").rstrip("."), 0)
            )
            hour, minute, second = (int(m.group(g) or 0) for g in ("hh", "mm", "ss"))
            if m.group("cw"):
                hour = 12 if m.group("cw") == "noon" else 0
            if m.group("ampm") == "pm" and hour < 12:
                hour += 12
            elif m.group("ampm") == "am" and hour == 12:
                hour = 0
            if not (1 <= month <= 12 and 1 <= int(m.group("d")) <= 31 and hour < 24 and minute < 60):
                continue
            try:
                when = datetime(int(m.group("y")), month, int(m.group("d")), hour, minute, second)
            except ValueError:
                continue  # 31 September
            if m.groupdict().get("off"):  # "10:00+02:00" is 08:00 UTC (ISO 8601 offset)
                sign = 1 if m.group("off") == "+" else -1
                when -= sign * timedelta(hours=int(m.group("oh")), minutes=int(m.group("om")))
            if ex.at is None:
                ex.at = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            ex.times.append((m.start(), m.end(), when.strftime("%Y-%m-%dT%H:%M:%SZ")))
            work = _mask(work, *m.span())
    ex.times.sort()
    for (s1, e1, t1), (s2, _e2, t2) in zip(ex.times, ex.times[1:], strict=False):
        if _RANGE_JOIN_RE.fullmatch(work, e1, s2) and _RANGE_BEFORE_RE.search(work, 0, s1) and t1 < t2:
            ex.range = (t1, t2)  # "from 23:50 to 00:00": a span of history, not one instant
            break
    return work


#: Basis points in words: "half a percent" (50), "a quarter of a percent" (25), "ten bps", "a basis point".
_BPS_WORDS_RE: Final = lazy_re(
    r"\b(?:(?P<half>half\s+(?:a|of\s+a|of\s+one|one)?)|(?P<quarter>(?:a\s+)?quarter\s+(?:of\s+)?(?:a|one)?)"
    rf"|(?P<word>{_alternation(w for w in _NUMBER_WORDS if w not in ('hundred',))}))\s*"
    r"(?P<unit>bps|bp|bips|basis[\s-]points?|percent|per\s?cent|pct|%)(?![a-z0-9])"
)


#: A percentage that measures a fall rather than a distance from the mid: "a 30% drop", "40% lower",
#: "drops by 30%", "falls more than 50 percent".
_DROP_AFTER_RE: Final = lazy_re(
    r"\s*(?:-\s*)?(?:drop|fall|decline|decrease|cut|reduction|loss|plunge|crash|collapse|lower|less|thinner"
    r"|shrink|shrinkage|fewer|down)s?\b"
)
_DROP_BEFORE_RE: Final = lazy_re(
    r"\b(?:drops?|dropped|falls?|fell|declines?|declined|decreases?|decreased|shrinks?|shrank|thins?|thinned"
    r"|plunges?|plunged|crash(?:es)?|crashed|collapses?|collapsed|down)\s+(?:by\s+)?(?:more\s+than\s+|over\s+"
    r"|at\s+least\s+|about\s+|~\s*)?$"
)


#: The crunch detector's ratio given by name: "drop ratio 0.4", "drop_ratio=0.3" (a fraction, 0..1).
_DROP_RATIO_RE: Final = lazy_re(
    r"\bdrop\s*ratio\s*(?:of|=|:|is|at)?\s*(?P<num>0?\.\d+|0|1(?:\.0+)?)(?![\d.%])"
)


#: A level relative to the rolling median the crunch detector uses: "below 30% of its rolling
#: median", "under half its normal depth" (the fraction is ``drop_ratio``).
_DROP_OF_MEDIAN_RE: Final = lazy_re(
    r"\b(?:below|under|beneath|less\s+than|lower\s+than|to)\s+(?:(?P<num>\d+(?:\.\d+)?)\s*(?:%|percent|per\s?cent|pct)"
    r"|(?P<frac>half|a\s+half|one\s+half|a\s+third|one\s+third|a\s+quarter|one\s+quarter|a\s+fifth))\s+(?:of\s+)?"
    r"(?:its|the|their|his)?\s*(?:rolling\s+|usual\s+|normal\s+|typical\s+|median\s+|average\s+)?"
    r"(?:median|normal|usual|typical|average|baseline|level)\b"
)
_FRACTION_WORDS: Final[dict[str, float]] = {"half": 0.5, "third": 1 / 3, "quarter": 0.25, "fifth": 0.2}


def _extract_drop_of_median(ex: _Extraction, work: str) -> str:
    """``drop_ratio`` from a level stated against the rolling median ("below 30% of its rolling
    median" 0.3, "under a quarter of its usual level" 0.25); read before lookbacks, so that "a
    quarter" is not a 90-day window nor "30%" a depth window."""
    for m in _DROP_OF_MEDIAN_RE.finditer(work):
        if m.group("num") is not None:
            ratio = float(m.group("num")) / 100
        else:
            ratio = _FRACTION_WORDS[m.group("frac").split()[-1]]
        if 0 < ratio < 1 and ex.drop_ratio is None:
            ex.drop_ratio = round(ratio, 6)
        work = _mask(work, *m.span())
    return work


def _extract_bps(ex: _Extraction, work: str) -> str:
    """Depth windows: "within 50 bps", "50bp", "0.5%" (50), "1 percent" (100), "half a percent" (50).
    A percentage written as a fall ("a 30% drop", "drops by 30%") is a relative change, kept as
    :attr:`_Extraction.drop_ratio` (0.7), not a window."""
    for m in _DROP_RATIO_RE.finditer(work):
        ex.drop_ratio = ex.drop_ratio if ex.drop_ratio is not None else float(m.group("num"))
        work = _mask(work, *m.span())
    for m in _BPS_RE.finditer(work):
        scale = 1 if m.group("unit").startswith(("b", "bi")) else 100
        if scale == 100 and (
            _DROP_AFTER_RE.match(work, m.end()) or _DROP_BEFORE_RE.search(work, 0, m.start("num"))
        ):
            pct = float(m.group("num"))
            if 0 < pct < 100 and ex.drop_ratio is None:
                ex.drop_ratio = round(1 - pct / 100, 6)
            work = _mask(work, *m.span())
            continue
        if ex.window_bps is None:
            ex.window_bps = _number(m.group("num"), scale=scale)
        work = _mask(work, *m.span())
    for m in _BPS_WORDS_RE.finditer(work):
        count = 0.5 if m.group("half") else 0.25 if m.group("quarter") else _NUMBER_WORDS[m.group("word")]
        scale = 1 if m.group("unit").startswith(("b", "bi")) else 100
        if ex.window_bps is None:
            ex.window_bps = _number(str(count), scale=scale)
        work = _mask(work, *m.span())
    return work


def _check_sign(
    ex: _Extraction, work: str, m: re.Match[str], value: int | float, end: int | None = None
) -> None:
    """Note a quantity written negative ("-5", "minus 5", "-$5k") or zero in ``ex.bad_quantity``."""
    neg = _NEGATIVE_BEFORE_RE.search(work, 0, m.start("qnum"))
    if ex.bad_quantity is None and (neg is not None or value == 0):
        start = neg.start() if neg is not None else m.start()
        written = " ".join(ex.low[start : m.end() if end is None else end].split())
        ex.bad_quantity = re.sub(r"(?:\s+(?:worth|of))+$", "", written)


def _extract_money(ex: _Extraction, work: str) -> str:
    """Quote-currency amounts: "$150k", "150k USDT worth of", "1,000,000 USD", "500k dollars of"."""
    for regex in _MONEY_RES:
        for m in regex.finditer(work):
            value = _quantity_value(m)
            _check_sign(ex, work, m, value)
            ex.notional = ex.notional if ex.notional is not None else value
            work = _mask(work, *m.span())
    for m in _MONEY_WORDS_RE.finditer(work):
        count = 0.5 if m.group("half") else 0.25 if m.group("quarter") else _NUMBER_WORDS[m.group("word")]
        value = _number(str(count), m.group("scale") or m.group("grand"))
        ex.notional = ex.notional if ex.notional is not None else value
        work = _mask(work, *m.span())
    return work


def _extract_size(ex: _Extraction, work: str) -> str:
    """Base-unit amounts right before an asset ("10k ETH", "2.5 btc", "ten SOL"); the asset stays."""
    for m in _SIZE_RE.finditer(work):
        value = _quantity_value(m)
        asset = re.compile(r"\$?[a-z0-9]+").match(work, m.end())
        _check_sign(ex, work, m, value, asset.end() if asset else None)
        ex.size = ex.size if ex.size is not None else value
        work = _mask(work, m.start(), m.end())
    for m in _FRACTION_SIZE_RE.finditer(work):
        ex.size = ex.size if ex.size is not None else (0.5 if m.group("half") else 0.25)
        work = _mask(work, *m.span())
    for m in _SIZE_WORDS_RE.finditer(work):
        small, scale = m.group("small"), m.group("scale")
        if small is None and scale is None:
            continue
        value = _NUMBER_WORDS.get(small or "", 1) * _SCALE_WORDS.get(scale or "", 1)
        ex.size = ex.size if ex.size is not None else value
        work = _mask(work, m.start(), m.end())
    return work


def _extract_pairs(ex: _Extraction, work: str) -> str:
    """Unified symbols: "eth-usd" -> ETH/USD, "ETHUSDT" -> ETH/USDT, "XBT/USD" -> BTC/USD."""
    for m in _PAIR_RE.finditer(work):
        base = _ALIAS_TO_TICKER[m.group("base")]
        quote = _QUOTES[m.group("quote")]
        if base == quote:
            continue
        unified = f"{base}/{quote}" + (f":{_QUOTES[m.group('settle')]}" if m.group("settle") else "")
        ex.mentions.append((m.start(), unified, base, quote))
        work = _mask(work, *m.span())
    return work


#: An amount right before an order noun: "a 250k buy in SOL" (with a k/m multiplier and the asset
#: named elsewhere: a quote amount, as traders size orders in dollars), "btc 5 sell", "eth 1.5k sell"
#: (right after the asset: base units), "a 40 buy" (base units).
_ORDER_NOUN_NOTIONAL_RE: Final = lazy_re(
    _quantity("q") + r"\s+(?P<usd>usd[tc]?\s+)?(?:buy|sell|order|ticket|clip|trade|purchase)s?\b"
)
_ASSET_BEFORE_RE: Final = lazy_re(rf"(?<![a-z0-9])\$?(?:{_ASSET_ALT})\s+$")


def _extract_more_sizes(ex: _Extraction, work: str) -> str:
    """Sizes not right before an asset: "size of 10", "40 coins", "sell 40 on kraken"; and a
    multiplied amount before an order noun as a notional ("a 250k buy in SOL")."""
    if ex.size is None and ex.notional is None:
        for m in _ORDER_NOUN_NOTIONAL_RE.finditer(work):
            value = _quantity_value(m)
            _check_sign(ex, work, m, value)
            after_asset = _ASSET_BEFORE_RE.search(work, 0, m.start())
            multiplied = bool(m.group("qmult") or m.group("qmultw"))
            if m.group("usd") or (multiplied and not after_asset):
                ex.notional = value
            else:
                ex.size = value
            work = _mask(work, *m.span("qnum"))
            break
    for regex in (_SIZE_KEYWORD_RE, _SIZE_UNITS_RE, _SIDE_VERB_NUMBER_RE):
        for m in regex.finditer(work):
            value = _quantity_value(m)
            _check_sign(ex, work, m, value)
            ex.size = ex.size if ex.size is not None else value
            work = _mask(work, *m.span("qnum"))
    return work


def _extract_venues(ex: _Extraction, work: str) -> str:
    """Venue ccxt ids in the order mentioned, and whether the question says "all venues"."""
    cue_ends = [m.end() for m in _EXCLUDE_CUE_RE.finditer(work)]
    excluding_from = -1  # where the text after an exclusion cue (or an excluded venue) resumes
    for m in _VENUE_RE.finditer(work):
        venue = _VENUE_ALIAS[re.sub(r"[\s_-]", "", m.group("venue"))]
        if m.group("venue") == "cb" and _CB_NOT_COINBASE_RE.match(work, m.end()):
            continue
        starts = [e for e in cue_ends if e <= m.start()] + ([excluding_from] if excluding_from >= 0 else [])
        resume = max(starts, default=-1)
        framed = (
            _EXCLUDE_FRAME_BEFORE_RE.search(work, 0, m.start())
            and _EXCLUDE_FRAME_AFTER_RE.match(work, m.end())
        ) or (
            # "eth depth on okx, bybit excluded": a venue placed by a preposition is not in the list
            _EXCLUDED_AFTER_RE.match(work, m.end()) and not _PLACED_BEFORE_RE.search(work, 0, m.start())
        )
        if framed or (resume >= 0 and _EXCLUDE_GAP_RE.fullmatch(work, resume, m.start())):
            if venue not in ex.exclude_venues:
                ex.exclude_venues.append(venue)
            excluding_from = m.end()
        elif venue not in ex.venues:
            ex.venues.append(venue)
        work = _mask(work, *m.span())
    ex.venues = [v for v in ex.venues if v not in ex.exclude_venues]
    ex.all_venues = bool(_ALL_VENUES_RE.search(work))
    return work


def _extract_assets(ex: _Extraction, work: str, original: str) -> None:
    """Base assets by alias; ambiguous tickers ("link", "dot") need capitals, a quantity or "$".

    Capitals only count in mixed-case text: in an all-caps message "NEAR" is just a shouted word.
    """
    letters = [c for c in original if c.isalpha()]
    shouting = bool(letters) and sum(c.isupper() for c in letters) > 0.8 * len(letters)
    for m in _ASSET_RE.finditer(work):
        alias = m.group("asset")
        if alias in _AMBIGUOUS_TICKERS:
            written = original[m.start("asset") : m.end("asset")]
            before = ex.low[: m.start()]
            capitals = written.isupper() and not shouting
            if not (capitals or m.group(0).startswith("$") or re.search(r"\d[kmb]?\s*-?\s*$", before)):
                continue
        ticker = _ALIAS_TO_TICKER[alias]
        ex.mentions.append((m.start(), ticker, ticker, None))
    if not ex.mentions:
        _extract_unknown_ticker(ex, work, original)
    ex.mentions.sort()


_UNKNOWN_PAIR_RE: Final = lazy_re(
    rf"(?<![A-Za-z0-9])(?P<base>[A-Z][A-Z0-9]{{1,9}})\s?[/\-_]\s?(?P<quote>{'|'.join(q.upper() for q in _QUOTES)})(?![A-Za-z0-9])"
)


def _extract_unknown_ticker(ex: _Extraction, work: str, original: str) -> None:
    """A ticker the alias tables do not know ("FOOBAR", "$wif", "ABC/USDT"), so the tools can say
    "unknown symbol X; closest: ..." instead of asking which asset was meant. Only words written in
    capitals (or as a cashtag / pair) count, and never a known word of the trade (``_NOT_TICKERS``)."""
    known_venues = {re.sub(r"[\\s_.-]", "", a).upper() for a in _VENUE_ALIAS}
    for rx in (_UNKNOWN_PAIR_RE, _UNKNOWN_TICKER_RE):
        for m in rx.finditer(original):
            if not work[m.start() : m.end()].strip():
                continue  # already read as something else (a size, a venue...)
            if rx is _UNKNOWN_PAIR_RE:
                base, quote = m.group("base"), m.group("quote")
                if base in _NOT_TICKERS or base == quote:
                    continue
                ex.mentions.append((m.start(), f"{base}/{quote}", base, quote))
                return
            token = (m.group("cash") or m.group("caps") or "").upper()
            if token in _NOT_TICKERS or token in known_venues or token.lower() in _QUOTES:
                continue
            letters = [c for c in original if c.isalpha()]
            if m.group("caps") and letters and sum(c.isupper() for c in letters) > 0.8 * len(letters):
                continue  # an all-caps message: capitals say nothing
            ex.mentions.append((m.start(), token, token, None))
            return
    _extract_lowercase_ticker(ex, work)


#: Words that fill the slots below but are never tickers: English words a trader writes there, the
#: trade's own words, units and time words (checked after the alias tables, venues and quotes).
_NOT_TICKER_WORDS: Final[frozenset[str]] = frozenset(
    {w.lower() for w in _NOT_TICKERS} | set(_NUMBER_WORDS) | set(_UNIT_LETTER) | set(_MULTIPLIERS) | set(_QUOTES)
    | {"the", "this", "that", "these", "those", "it", "its", "them", "my", "your", "our", "their", "his", "her",
       "an", "some", "each", "every", "both", "either", "other", "another", "more", "less", "most", "much",
       "many", "few", "now", "today", "here", "there", "right", "currently", "again", "please", "pls", "plz",
       "market", "markets", "venue", "venues", "exchange", "exchanges", "book", "books", "order", "orders",
       "trade", "trades", "size", "side", "price", "prices", "px", "spread", "spreads", "depth", "liq",
       "liquidity", "slippage", "impact", "level", "levels", "coin", "coins", "token", "tokens", "unit",
       "units", "contract", "contracts", "lot", "lots", "times", "x", "bps", "bp", "pct", "percent",
       "dollars", "dollar", "bucks", "worth", "usd", "total", "notional", "quote", "base", "asset", "assets",
       "pair", "pairs", "symbol", "ticker", "perp", "perps", "perpetual", "futures", "spot", "swap", "buy",
       "sell", "long", "short", "bid", "bids", "ask", "asks", "offer", "offers", "top", "mid", "like",
       "look", "looking", "looks", "thanks", "is", "are", "was", "be", "been", "do", "does", "did",
       "and", "or", "but", "with", "without", "within", "on", "in", "at", "for", "of", "to", "from", "by",
       "vs", "versus", "against", "across", "over", "under", "about", "what", "whats", "how", "hows", "which",
       "where", "who", "why", "when", "me", "us", "you", "we", "i", "im", "ive", "id", "one", "ones", "all",
       "any", "no", "not", "so", "then", "than", "too", "very", "just", "only", "also", "still", "yet",
       "lately", "recently", "average", "avg", "whole", "entire", "full", "deep", "thin", "tight", "wide",
       "big", "large", "small", "current", "latest", "last", "live", "real", "good", "bad", "best", "worst",
       "candles", "candle", "bars", "bar", "secs", "sec", "seconds", "second", "points", "point", "ticks",
       "tick", "rows", "samples", "periods", "slices", "chunks", "clips", "legs", "shares", "pieces", "steps",
       "general", "mainnet", "weekend", "weekends", "night", "morning", "open", "close",
       "fees", "fee", "taker", "maker", "sure", "ok", "okay", "yes", "yeah", "hmm", "etc", "ago",
       "extra", "once", "twice", "hour", "day", "week", "month", "year", "time", "go"}
)  # fmt: skip
#: Symbol slots a lower-case word can fill: after an order amount ("2000 jup"), before a quote
#: ("jupusdt", "jup/usdt"), before a book word ("the wld book", "jup spread"), after "on/for/of/in"
#: behind a book word ("spread on jup?", "liquidity in xyz on kraken").
_LOWER_TICKER_SLOTS: Final[tuple[re.Pattern[str], ...]] = (
    # digits glued to 3+ letters that are no unit: "1000sats", "1inch" (checked before "2000 jup")
    lazy_re(r"(?<![\w.,$])(?P<tok>\d+(?P<letters>[a-z]{3,9}))(?![a-z0-9])"),
    lazy_re(_quantity("q") + r"\s*-?\s*(?P<tok>[a-z][a-z0-9]{1,5})(?![a-z0-9])"),
    lazy_re(
        r"(?<![a-z0-9])(?P<tok>[a-z][a-z0-9]{1,9}?)(?:\s?[/_-]\s?|)(?P<quote>usdt|usdc|usd|busd|fdusd)(?![a-z0-9])"
    ),
    lazy_re(
        r"(?<![a-z0-9])(?P<tok>[a-z][a-z0-9]{1,5})\s+(?:order[\s-]?book|orderbook|book|spread|depth|liq(?:uidity)?"
        r"|market|perp(?:etual)?s?|price|px|pair|token|coin)\b"
    ),
    lazy_re(
        r"\b(?:spreads?|depth|liq(?:uidity)?|books?|orderbook|prices?|px|slippage|impact|imbalance|mid|bid[\s/-]ask"
        r"|bbo|tob|top\s+of\s+(?:the\s+)?book|quotes?|bids?|asks?|offers?|levels?)\s+"
        r"(?:on|for|of|in)\s+(?:the\s+)?(?P<tok>[a-z][a-z0-9]{1,5})(?=\s*(?:[?.!,]|$|\b(?:on|at|in|via)\b))"
    ),
)


def _extract_lowercase_ticker(ex: _Extraction, work: str) -> None:
    """A lower-case word the alias tables do not know in a slot only a symbol fills (see
    :data:`_LOWER_TICKER_SLOTS`), read as that symbol so the tools answer "unknown symbol X;
    closest: ..."; an amount right before it is the order size ("2000 jup")."""
    for rx in _LOWER_TICKER_SLOTS:
        for m in rx.finditer(work):
            token = m.group("tok")
            if token in _NOT_TICKER_WORDS or token in _VENUE_ALIAS or not re.search(r"[a-z]", token):
                continue
            if "letters" in rx.groupindex and m.group("letters") in _NOT_TICKER_WORDS:
                continue  # "50bps", "10days", "24hrs"
            base = token.upper()
            quote = _QUOTES[m.group("quote")] if "quote" in rx.groupindex else None
            ex.mentions.append((m.start("tok"), f"{base}/{quote}" if quote else base, base, quote))
            if "qnum" in rx.groupindex and ex.size is None and ex.notional is None:
                value = _quantity_value(m)
                _check_sign(ex, work, m, value)
                ex.size = value
            return


def _extract_side(ex: _Extraction) -> None:
    """Earliest buy/sell verb; "buy side", "sell-off", "buy or sell" give no side."""
    text = _NOT_A_SIDE_RE.sub(lambda m: " " * len(m.group(0)), ex.low)
    found = [(m.start(), side) for side, regex in _SIDE_PATTERNS if (m := regex.search(text))]
    ex.side = min(found)[1] if found else None


_MONTH_ABBR: Final[dict[str, int]] = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_CLOCK = r"(?P<hh>\d{1,2}):(?P<mm>\d{2})(?::(?P<ss>\d{2})(?:\.(?P<frac>\d{1,9}))?)?"
_DAY_MONTH = (
    r"(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
    r"[a-z]*\.?(?:,?\s+(?P<year>\d{4}))?"
)
_UTC = r"(?:\s*(?:utc|gmt|z)\b)?"
#: "5 minutes before the end (of the recording)": relative to each book's recording.
_AS_OF_BEFORE_END_RE: Final = lazy_re(
    rf"\b(?:(?P<num>\d+(?:\.\d+)?)\s*|(?P<word>{_alternation(_NUMBER_WORDS)})\s+)(?P<unit>seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\s+(?:before|prior\s+to|from)\s+(?:the\s+)?end"
    r"(?:\s+of\s+the\s+(?:recording|data|capture|session))?\b"
)
#: "at 2024-08-08 23:58:30 (UTC)", "as of 2024-08-08T23:58Z".
_AS_OF_ISO_RE: Final = lazy_re(
    rf"\b(?:(?:at|as\s+of|on)\s+)?(?P<date>\d{{4}}-\d{{2}}-\d{{2}})[t\s]+{_CLOCK}{_UTC}"
)
#: "at 23:58 UTC on 8 Aug", "at 23:58 (UTC)", "on 8 Aug at 23:58", "as of 23:58:30 utc".
_AS_OF_CLOCK_RE: Final = lazy_re(rf"\b(?:at|as\s+of)\s+{_CLOCK}{_UTC}(?:\s+on\s+(?:the\s+)?{_DAY_MONTH})?")
_AS_OF_DAY_FIRST_RE: Final = lazy_re(rf"\bon\s+(?:the\s+)?{_DAY_MONTH}\s+at\s+{_CLOCK}{_UTC}")


def _clock_text(m: re.Match[str]) -> str | None:
    hh, mm, ss = int(m.group("hh")), int(m.group("mm")), int(m.group("ss") or 0)
    if hh > 23 or mm > 59 or ss > 59:
        return None
    frac = f".{m.group('frac')}" if m.group("frac") else ""
    return f"{hh:02d}:{mm:02d}:{ss:02d}{frac}"


def _extract_as_of(ex: _Extraction, work: str) -> str:
    """The book instant asked (``_Extraction.as_of``); its words are masked so that "5 minutes"
    or "23:58" are not read as a timeframe, a lookback or a size."""
    m = _AS_OF_BEFORE_END_RE.search(work)
    if m is not None:
        unit = m.group("unit")[0]
        word = m.group("word")  # digits, or a number word ("five minutes", "a minute")
        count = Decimal(_NUMBER_WORDS[word]) if word else Decimal(m.group("num"))
        secs = count * {"s": 1, "m": 60, "h": 3600}[unit]
        ex.as_of = f"end-{secs.normalize():f}s"
        return _mask(work, *m.span())
    m = _AS_OF_ISO_RE.search(work)
    if m is not None and (clock := _clock_text(m)) is not None:
        ex.as_of = f"{m.group('date')}T{clock}Z"
        return _mask(work, *m.span())
    for rx in (_AS_OF_DAY_FIRST_RE, _AS_OF_CLOCK_RE):
        m = rx.search(work)
        if m is None or (clock := _clock_text(m)) is None:
            continue
        if m.group("mon"):
            month, day = _MONTH_ABBR[m.group("mon")], int(m.group("day"))
            if not 1 <= day <= 31:
                continue
            year = m.group("year")
            ex.as_of = (
                f"{year}-{month:02d}-{day:02d}T{clock}Z" if year else f"--{month:02d}-{day:02d}T{clock}Z"
            )
        else:
            ex.as_of = f"T{clock}Z"
        return _mask(work, *m.span())
    return work


def _extract(text: str) -> _Extraction:
    """Read every argument the question states; each span is masked once it is consumed."""
    low = _lower(text)
    ex = _Extraction(low=low, cues=frozenset(name for name, rx in _CUES.items() if rx.search(low)))
    work = _extract_time(ex, low)  # absolute dates first (ISO 8601 UTC)
    work = _extract_as_of(ex, work)  # then book instants: "5 minutes before the end", no-year dates
    if ex.as_of is None:
        ex.as_of = ex.at
    work = _extract_drop_of_median(ex, work)
    work = _extract_timeframe(ex, work)
    work = _extract_lookback(ex, work)
    work = _extract_bps(ex, work)
    work = _extract_money(ex, work)
    work = _extract_size(ex, work)
    work = _extract_pairs(ex, work)
    for m in _TIMEFRAME_COMPACT_RE.finditer(work):
        if _COMPARATOR_BEFORE_RE.search(work, 0, m.start()):
            continue  # "depth < 1m", "drops below 2m": a level compared against, in millions
        if _RECENT_BEFORE_RE.search(work, 0, m.start()):
            continue  # "last 30m": a recent window in minutes, not a candle size
        ex.timeframe = ex.timeframe or _timeframe(m.group("num"), m.group("unit"))
        work = _mask(work, *m.span())
    work = _extract_more_sizes(ex, work)
    work = _extract_venues(ex, work)
    _extract_assets(ex, work, text)
    _extract_side(ex)
    ex.perp = bool(_PERP_RE.search(low))
    ex.inverse = bool(_INVERSE_RE.search(low))
    ex.venues = _perp_venues(ex)  # "coin-m perpetual on binance" is one venue, binancecoinm
    if _VWAP_SCHEDULE_RE.search(low):
        ex.schedule = "vwap"
    elif _TWAP_SCHEDULE_RE.search(low):
        ex.schedule = "twap"
    elif ex.has_order and (m := _SCHEDULE_TAG_RE.search(low)) is not None:
        ex.schedule = m.group("algo")
    elif ex.has("backtest") and (m := _BACKTEST_ALGO_RE.search(low)) is not None:
        ex.schedule = m.group("algo")  # "backtest 8 eth buy ... vwap on okx": a backtest asks for no price
    elif _ARRIVAL_SCHEDULE_RE.search(low):
        ex.schedule = "arrival"
    if ex.window_bps is not None and (
        _MAX_SIZE_RE.search(low)
        or (
            not ex.has_quantity
            and (_SLIPPAGE_LIMIT_RE.search(low) or _MAX_SIZE_CUE_RE.search(low))
            and not ex.has("compare", "route", "across_venues", "alerts", "backtest")
        )
    ):
        ex.max_slippage_bps, ex.window_bps = ex.window_bps, None
    if (m := _BARE_NUMBER_RE.search(work)) is not None:
        ex.bare_number = _quantity_value(m)
        ex.bare_scaled = bool(m.group("qmult") or m.group("qmultw") or "," in m.group("qnum"))
        neg = _NEGATIVE_BEFORE_RE.search(work, 0, m.start("qnum"))
        ex.bare_negative = neg is not None
        if neg is not None or ex.bare_number == 0:
            ex.bad_bare_number = " ".join(ex.low[neg.start() if neg else m.start() : m.end()].split())
    return ex


# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """One capability: ``cue`` fires on explicit wording, ``infer`` on the arguments alone."""

    capability: str
    cue: Callable[[_Extraction], bool]
    infer: Callable[[_Extraction], bool] = lambda ex: False


#: Words for the liquidity a crunch is a fall of.
_LIQUIDITY_WORD_RE: Final = lazy_re(r"\b(?:liquidity|liq|depth|book|bids?|asks?|offers?)\b")

#: Ordered: the first rule that fires wins. Alerts and health come first because their cue words are
#: specific ("circuit breaker") while "which exchanges"/"liquidity" also appear in their questions.
_RULES: Final[tuple[_Rule, ...]] = (
    _Rule(
        "alerts",
        lambda ex: (
            ex.has("alerts")
            or any(rx.search(ex.low) for rx in (_ALERT_LIST_RE, _ALERT_DELETE_RE))
            # "any 50% drops in eth depth this week": a relative fall of liquidity is a crunch
            or (ex.drop_ratio is not None and _LIQUIDITY_WORD_RE.search(ex.low) is not None)
        ),
    ),
    _Rule(
        "health",
        lambda ex: (
            ex.has("health")
            or (
                ex.has("health_weak")
                and not ex.mentions
                and bool(ex.venues or ex.all_venues or ex.has("venue_words"))
            )
        ),
    ),
    _Rule(
        "pairs",
        lambda ex: (
            ex.has("pairs")
            or (ex.has("pairs_weak") and ex.has("pairs_joint") and len(ex.mentions) >= 2)
            or (ex.has("pairs_two") and len(ex.legs) >= 2)
        ),
    ),
    _Rule(
        "backtest",
        lambda ex: ex.has("backtest") or (ex.has("backtest_weak") and ex.has_order),
        lambda ex: (
            ex.has_order
            and (
                ex.lookback_days is not None
                or ex.lookback_hours is not None
                # an order at a stated past time is a backtest, unless the question asks for a book
                # answer at that instant ("impact of selling 10 ETH at ...", "route 20 BTC on 8 Aug
                # at 23:59": as_of on the book rebuilt to it)
                or (
                    ex.at is not None
                    and not re.search(r"\bas\s+of\b", ex.low)
                    and not ex.has("impact", "route", "order_book", "compare")
                )
            )
        ),
    ),
    _Rule(
        "route_order",
        lambda ex: ex.has("route"),
        lambda ex: ex.has_quantity and ex.has("across_venues") and not ex.has("compare"),
    ),
    _Rule(
        "compare_venues",
        lambda ex: (
            ex.has("compare", "across_venues")
            # "where has BTC traded this week" asks about the past, not for a venue
            or (ex.has("compare_weak") and len(ex.venues) != 1 and (ex.has_order or not _has_lookback(ex)))
        ),
        lambda ex: len(ex.venues) >= 2,
    ),
    _Rule(
        "market_impact",
        lambda ex: ex.has("impact") or ex.max_slippage_bps is not None,
        lambda ex: ex.has_order,
    ),
    _Rule(
        "history",
        lambda ex: ex.has("history"),
        lambda ex: bool(ex.mentions) and (ex.lookback_days is not None or ex.lookback_hours is not None),
    ),
    _Rule("order_book", lambda ex: ex.has("order_book"), lambda ex: bool(ex.mentions or ex.venues)),
)


def _has_lookback(ex: _Extraction) -> bool:
    return ex.lookback_days is not None or ex.lookback_hours is not None


@dataclass(frozen=True)
class _Match:
    capability: str
    explicit: bool  # True when cue words named the capability, False when inferred from arguments


def _classify(ex: _Extraction) -> _Match | None:
    """First rule of :data:`_RULES` whose cue or inference fires; ``None`` when nothing does."""
    if (
        ex.has("definitional")
        and not ex.has_quantity
        and not ex.venues
        and ex.lookback_days is None
        and ex.lookback_hours is None
        and ex.window_bps is None
        and ex.timeframe is None
        and ex.at is None
        and not any(r.cue(ex) for r in _RULES)
    ):
        return None  # "what is bitcoin?" is general knowledge, not a liquidity question
    for rule in _RULES:
        if rule.cue(ex):
            return _Match(rule.capability, explicit=True)
        if rule.infer(ex):
            return _Match(rule.capability, explicit=False)
    return None


def _refusal(ex: _Extraction) -> str | None:
    """``"<code>: <why>"`` when the text is unsafe or plainly off-topic, else ``None``."""
    for code, why, regex in _REFUSALS:
        if not regex.search(ex.low):
            continue
        if code == "investment_advice" and (ex.has("compare") or len(ex.venues) >= 2):
            continue  # "should I buy on Binance or Kraken?" is a venue choice
        if code == "trade_execution" and ex.has("route") and not _REAL_ORDER_RE.search(ex.low):
            continue  # "execute 10 BTC with the smart order router" asks for the routing simulation
        return f"{code}: {why}"
    return None


#: What makes a routing request a real order after all.
_REAL_ORDER_RE: Final = lazy_re(
    r"\breal\s+money\b|\b(?:real|live)\s+orders?\b|\bmy\s+(?:\w+\s+)?account\b|\bwithdraw|\bdeposit\b"
    r"|\btransfer\b|\bon\s+my\s+behalf\b"
)


#: Venues listing spot and USDT perpetuals under one ccxt id: a base asset said of a perpetual there
#: ("BTC perp on bybit", or "the ETH perp" with no venue) is the linear ``BASE/USDT:USDT`` (ccxt's
#: unified symbol). A futures-only id (``binanceusdm``) already picks the perp from the base.
_USDT_PERP_VENUES: Final[frozenset[str | None]] = frozenset(
    {None, "bybit", "okx", "gate", "kucoin", "bitget", "mexc", "htx"}
)


def _perp_symbol(ex: _Extraction, symbol: str | None) -> str | None:
    """``BTC/USDT`` said of a perpetual ("BTCUSDT perp") as the linear perp ``BTC/USDT:USDT``;
    ``BTC/USD`` said of an inverse/coin-margined contract as ``BTC/USD:BTC``; a base asset said of
    a perpetual as the linear USDT perp (inverse: ``BTC/USD:BTC``) where that is the venue's kind."""
    if symbol is None or ":" in symbol:
        return symbol
    if "/" not in symbol:
        venue = ex.venues[0] if len(ex.venues) == 1 else None
        if ex.inverse and venue is None:
            return f"{symbol}/USD:{symbol}"
        if ex.perp and not ex.inverse and venue in _USDT_PERP_VENUES:
            return f"{symbol}/USDT:USDT"
        return symbol
    base, quote = symbol.split("/")
    if ex.inverse and quote == "USD":
        return f"{base}/USD:{base}"
    if ex.perp and quote in ("USDT", "USDC"):
        return f"{base}/{quote}:{quote}"
    return symbol


def _perp_venues(ex: _Extraction) -> list[str]:
    """ "binance" said of perpetuals is Binance's futures venue (USD-M, or COIN-M for inverse)."""
    if not (ex.perp or ex.inverse):
        return ex.venues
    target = "binancecoinm" if ex.inverse else "binanceusdm"
    return list(dict.fromkeys(target if v == "binance" else v for v in ex.venues))


def _venue_args(venues: list[str]) -> dict[str, Any]:
    if len(venues) == 1:
        return {"venue": venues[0]}
    return {"venues": list(venues)} if venues else {}


#: Capabilities whose question is about one order of a given amount.
_ORDER_CAPABILITIES: Final[frozenset[str]] = frozenset(
    {"market_impact", "compare_venues", "route_order", "backtest"}
)


def _order_size(capability: str, ex: _Extraction) -> int | float | None:
    """The stated size; in an order question with no amount next to the asset, an amount written on
    its own with a multiplier or commas ("sol kraken vs binance 1k", "route 2,500 on okx") is the
    size in base units, as traders size a clip by its coin count."""
    if ex.size is not None or ex.notional is not None or capability not in _ORDER_CAPABILITIES:
        return ex.size
    if ex.bare_scaled and ex.bare_number is not None and ex.bare_number > 0 and not ex.bare_negative:
        return ex.bare_number
    return None


def _args_for(capability: str, ex: _Extraction) -> dict[str, Any]:
    """The arguments ``capability`` accepts, from what the question states."""
    legs = ex.legs
    candidates: dict[str, Any] = {
        "symbol": _perp_symbol(ex, ex.symbol),
        **_venue_args(_perp_venues(ex)),
        "max_slippage_bps": ex.max_slippage_bps,
        "schedule": ex.schedule,
        "side": ex.side,
        "size": _order_size(capability, ex),
        "notional": ex.notional,
        "window_bps": ex.window_bps,
        "lookback_days": ex.lookback_days,
        "lookback_hours": ex.lookback_hours,
        "timeframe": ex.timeframe,
        "symbol_a": legs[0] if legs else None,
        "symbol_b": legs[1] if len(legs) > 1 else None,
        "exclude_venues": list(ex.exclude_venues) or None,
        "drop_ratio": ex.drop_ratio,
        # one stated time, passed as whichever time argument the capability's tools take
        "at": ex.at,
        "as_of": ex.as_of,
    }
    return _filter(capability, candidates)


_ALERT_CREATE_RE: Final = lazy_re(
    r"\b(?:alert|notify|ping|warn|tell|message|msg|dm|sms|txt|text|email)\s+(?:me|us)\b|\blet\s+(?:me|us)\s+know\b"
    r"|\b(?:set|create|add|make)\s+(?:up\s+)?(?:an?\s+|new\s+)?(?:alert|alarm|trigger|notification)"
    r"|\bheads[\s-]?up\s+(?:when|if)\b|\balert\s+(?:on\s+\w+\s+)?(?:when|if|once|whenever)\b"
    r"|\b(?:notify|ping|warn|message|email|text)\s+(?:me\s+|us\s+)?(?:when|if|once|whenever|as\s+soon\s+as)\b"
    r"|" + _NOTIFY_MORE
)
_ALERT_LIST_RE: Final = lazy_re(
    r"\b(?:list|show|see|view|display|give|print)\s+(?:me\s+)?(?:all\s+)?(?:of\s+)?(?:my|the|our|existing|active"
    r"|current|saved|all)?\s*(?:alerts?|alert\s+rules|rules|triggers|alarms)\b(?!\s+(?:on|for|about|in)\b)"
    r"|\b(?:my|our)\s+(?:\w+\s+)?(?:alerts|alert\s+rules|alert|rules|triggers|alarms)\b"
    r"|\b(?:what|which)\s+alerts?\s+(?:do|have|did|are|is)\b|\balerts?\s+(?:i|we)\s+(?:have|set|created|made)\b"
    r"|\bhow\s+many\s+alerts\b|\bany\s+alerts\s+(?:set|configured|defined)\b"
    r"|\bwhat\s+(?:am\s+i|are\s+we|are\s+you|is\s+being)\s+(?:watching|monitoring|tracking|watched|monitored)\b"
    # the bare noun as the whole message: "rules?", "my rules", "active rules"
    r"|^\W*(?:my\s+|our\s+|the\s+|all\s+|active\s+|current\s+)?(?:alert\s+)?rules\W*$"
    r"|\b(?:what|which|any)\s+(?:alert\s+)?(?:rules|triggers|alarms|watches)\s+(?:do|have|did|are|is|exist)\b"
    r"|\b(?:triggers|alarms)\s+(?:i|we)\s+(?:have|set|made|created)\b|\brules\s+(?:i|we)\s+(?:have|set|made)\b"
)
#: Alert metrics by the words that name them, checked in order.
_ALERT_METRICS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("zscore", lazy_re(r"\bz[\s-]?scores?\b")),
    ("imbalance", lazy_re(r"\bimbalance")),
    ("spread_bps", lazy_re(r"\bspreads?\b")),
    # a depth window stated ("within 25 bps") or a book thinning is about depth, not the price
    (
        "depth_notional",
        lazy_re(r"\bdepth|\bliquidity\b|\bthin(?:s|ning|ned|ner)?\b|\bwithin\s+[\d.]+\s*(?:bps|bp|bips|%)"),
    ),
    ("volatility", lazy_re(r"vol[ai]til")),
    ("volume", lazy_re(r"\bvolume\b")),
    (
        "mid_price",
        lazy_re(r"\bprices?\b|\bmid\b|\btrades?\s+(?:above|below|over|under)|\b(?:hits?|reach(?:es)?)\b"),
    ),
)
_ALERT_ABOVE_RE: Final = lazy_re(
    r"\b(?:above|over|exceeds?|exceeding|wider|widens?|greater|more\s+than|higher|rises?|goes\s+up|tops?"
    r"|hits?|reach(?:es)?|beyond|(?:goes|gets|moves|climbs|rises|pushes|blows)\s+past)\b|>"
)
_ALERT_BELOW_RE: Final = lazy_re(
    r"\b(?:below|under|less\s+than|lower|drops?|falls?|thinner|thins?|shrinks?|dips?|goes\s+down)\b|<"
)


#: A level being crossed ("crosses 60000", "crosses above 3k", "crossing below -2"): the comparisons
#: ``crosses`` / ``crosses_above`` / ``crosses_below`` of ``analytics.alerts.Comparison``.
_ALERT_CROSS_RE: Final = lazy_re(
    r"\bcross(?:es|ing)?\b(?:\s+(?:(?P<up>above|over|up|upwards?)|(?P<down>below|under|down|downwards?))\b)?"
)

_ALERT_DELETE_RE: Final = lazy_re(
    r"\b(?:delete|remove|cancel|clear|drop|disable|turn\s+off|get\s+rid\s+of|wipe)\b[^.?!]{0,30}\b(?:alerts?|rules?|triggers?|alarms?)\b"
)


def _alert_spec(ex: _Extraction) -> dict[str, Any]:
    """What an alerts question asks for: ``alert_action`` (create / list / recent / delete: the
    assistant cannot delete, it lists the rules and says how) and, to create a rule, ``metric``,
    ``comparison`` and ``threshold`` in the metric's unit (bps for spread and volatility, quote for
    depth and price)."""
    low = ex.low
    if _ALERT_DELETE_RE.search(low):
        return {"alert_action": "delete"}
    if _ALERT_LIST_RE.search(low) and not _ALERT_CREATE_RE.search(low) and not _ALERT_FIRED_RE.search(low):
        return {"alert_action": "list"}
    stated_rule = (  # "btc alert spread > 10bps": a metric, a direction and a threshold make a rule
        re.search(r"\balert|\balarm", low)
        and (_ALERT_ABOVE_RE.search(low) or _ALERT_BELOW_RE.search(low) or _ALERT_CROSS_RE.search(low))
        and (ex.bare_number is not None or ex.window_bps is not None or ex.notional is not None)
    )
    if not _ALERT_CREATE_RE.search(low) and not stated_rule:
        return {"alert_action": "recent"}
    if ex.drop_ratio is not None and ex.bare_number is None and ex.notional is None:
        # "alert if depth has a 30% drop": a fall relative to its own level is the crunch detector's
        # drop_ratio (liquidity_alerts); a rule takes only an absolute threshold
        return {"alert_action": "recent"}
    out: dict[str, Any] = {"alert_action": "create"}
    metric = next((m for m, rx in _ALERT_METRICS if rx.search(low)), None)
    above, below = _ALERT_ABOVE_RE.search(low), _ALERT_BELOW_RE.search(low)
    cross = _ALERT_CROSS_RE.search(low)
    if (
        metric is None
        and (above or below or cross)
        and (ex.bare_number is not None or ex.notional is not None)
    ):
        metric = "mid_price"  # "ping me when ETH drops below 2500": a level of the asset is its price
    if metric is not None:
        out["metric"] = metric
    if cross:
        out["comparison"] = (
            "crosses_above" if cross.group("up") else "crosses_below" if cross.group("down") else "crosses"
        )
    elif above and below:
        out["comparison"] = "above" if above.start() < below.start() else "below"
    elif above or below:
        out["comparison"] = "above" if above else "below"
    bps_metric = metric in ("spread_bps", "volatility")
    if ex.window_bps is not None and not bps_metric:
        out["window_bps"] = ex.window_bps  # "depth within 25 bps drops below $500k"
    if bps_metric and ex.window_bps is not None:
        threshold = ex.window_bps
    elif metric in ("depth_notional", "mid_price") and ex.notional is not None:
        threshold = ex.notional
    elif ex.bare_number is not None:
        # Imbalance (-1..1) and z-scores are signed: "drops below -0.5" is -0.5, not 0.5.
        signed = metric in ("imbalance", "zscore") and ex.bare_negative
        threshold = -ex.bare_number if signed else ex.bare_number
    else:
        threshold = ex.size if metric not in ("depth_notional", "mid_price") else None
    if threshold is not None:
        out["threshold"] = threshold
    return out


def _filter(capability: str, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments the capability's tools take (an hour count becomes ``lookback_days``)."""
    args = dict(args)
    hours = args.pop("lookback_hours", None)
    if hours is not None and args.get("lookback_days") is None:
        args["lookback_days"] = hours / 24
    allowed = _allowed(capability)
    return {k: v for k, v in args.items() if k in allowed and v is not None}


# ---------------------------------------------------------------------------------------------
# Follow-ups
# ---------------------------------------------------------------------------------------------


def _contributes(ex: _Extraction) -> bool:
    """Whether the text adds anything a follow-up could change."""
    return bool(
        ex.mentions
        or ex.venues
        or ex.all_venues
        or ex.has_order
        or ex.bare_number is not None
        or ex.window_bps is not None
        or ex.lookback_days is not None
        or ex.lookback_hours is not None
        or ex.timeframe
        or ex.as_of is not None
        or ex.has("flip")
        or ex.exclude_venues
        or ex.schedule
        or ex.at
        or ex.max_slippage_bps is not None
    )


def _is_follow_up(ex: _Extraction, match: _Match | None, previous: ParsedQuery) -> bool:
    """A follow-up lacks a capability cue or a subject, and reads like one (lead-in, "instead", short)."""
    if previous.capability == "refuse":
        return False
    has_subject = bool(ex.mentions) or (match is not None and match.capability == "health")
    if match is not None and match.explicit and has_subject:
        return False  # a full new question
    reads_like = (
        any(rx.search(ex.low) for rx in (_FOLLOW_UP_LEAD_RE, _INSTEAD_RE, _ANAPHORA_RE))
        or len(re.findall(r"[a-z0-9$]+", ex.low)) <= 4
    )
    return reads_like and (_contributes(ex) or (match is not None and match.explicit))


def _merge(previous: ParsedQuery, ex: _Extraction, match: _Match | None) -> ParsedQuery:
    """Previous query with what the follow-up changes: venue(s), symbol, size/notional, side..."""
    capability = match.capability if match is not None and match.explicit else previous.capability
    args = dict(previous.args)
    # Symbols: pairs take legs; others take the first symbol.
    if ex.mentions:
        legs = ex.legs
        if "symbol_a" in args or capability == "pairs":
            if len(legs) >= 2:
                args["symbol_a"], args["symbol_b"] = legs[0], legs[1]
            else:
                args["symbol_a"] = legs[0]
        args["symbol"] = ex.symbol
    # Carry the subject across a change between pairs and single-asset capabilities.
    if capability == "pairs" and "symbol_a" not in args and "symbol" in args:
        args["symbol_a"] = args["symbol"]
    if capability != "pairs" and "symbol" not in args and "symbol_a" in args:
        args["symbol"] = args["symbol_a"]
    # Quantity: a size replaces a notional and vice versa; a bare number is a size.
    size = ex.size if ex.size is not None else (ex.bare_number if ex.notional is None else None)
    if size is not None:
        args["size"] = size
        args.pop("notional", None)
    if ex.notional is not None:
        args["notional"] = ex.notional
        args.pop("size", None)
    # Side: stated, or flipped by "the other side".
    if ex.side is not None:
        args["side"] = ex.side
    elif ex.has("flip") and args.get("side") in ("buy", "sell"):
        args["side"] = "sell" if args["side"] == "buy" else "buy"
    # Venues: one new venue is appended to a list or replaces a single venue; two or more replace.
    if ex.venues or ex.all_venues:
        previous_venues = args.pop("venues", None) or ([args.pop("venue")] if "venue" in args else [])
        if ex.all_venues and not ex.venues:
            venues: list[str] = []
        elif len(ex.venues) == 1 and len(previous_venues) >= 2 and _ADDITIVE_RE.search(ex.low):
            venues = previous_venues + [v for v in ex.venues if v not in previous_venues]
        else:
            venues = list(ex.venues)
        args.update(_venue_args(venues))
        if len(venues) >= 2 and capability in ("order_book", "market_impact"):
            capability = "compare_venues"
    if ex.exclude_venues:
        args["exclude_venues"] = list(ex.exclude_venues)
    if ex.at is not None:
        args["at"] = ex.at
    if ex.as_of is not None:
        args["as_of"] = ex.as_of
    for key in ("window_bps", "lookback_days", "lookback_hours", "timeframe", "schedule", "max_slippage_bps"):
        if getattr(ex, key) is not None:
            args[key] = getattr(ex, key)
    if ex.lookback_days is not None:
        args.pop("lookback_hours", None)
    if ex.lookback_hours is not None:
        args.pop("lookback_days", None)
    # what to do with alerts (list, create, recent) is always the new text's
    extra = _alert_spec(ex) if capability == "alerts" else {}
    return ParsedQuery(
        capability, _filter(capability, args), f"follow-up to the previous {previous.capability} query", extra
    )


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def parse_query(text: str, previous: ParsedQuery | None = None) -> ParsedQuery:
    """Map one user question to a capability and the arguments it states.

    ``previous`` is the parse of the user's last question; a follow-up ("and on Kraken?", "what
    about 20 BTC?", "now sell instead") reuses its capability and arguments with what the new text
    changes, while a full new question ignores it. Never raises on user text: anything that is not
    a liquidity question, or is unsafe, comes back as ``refuse`` with the reason in ``reason``.
    """
    clean = _normalise(text or "")
    if not re.search(r"[A-Za-z0-9]", clean):
        return ParsedQuery("refuse", {}, _EMPTY)
    ex = _extract(clean)
    refusal = _refusal(ex)
    if refusal is not None:
        return ParsedQuery("refuse", {}, refusal)
    match = _classify(ex)
    if previous is not None and _is_follow_up(ex, match, previous):
        if ex.size is None and ex.notional is None and ex.bad_bare_number is not None:
            ex.bad_quantity = ex.bad_bare_number  # "what about -3?": the bare number is the new size
        return _sized(_merge(previous, ex, match), ex)
    if match is None:
        return ParsedQuery("refuse", {}, _SMALLTALK if _SMALLTALK_RE.search(ex.low) else _OFF_TOPIC)
    if (
        not match.explicit
        and match.capability == "market_impact"
        and ex.bad_quantity is None
        and _BARE_ORDER_RE.match(ex.low)
    ):
        return ParsedQuery("refuse", {}, _BARE_ORDER)
    extra = _alert_spec(ex) if match.capability == "alerts" else {}
    if match.capability in ("history", "order_book") and ex.mentions:
        liquidity = _liquidity_history_args(ex)
        if liquidity is not None:
            return ParsedQuery("history", {**_args_for("history", ex), **liquidity})
    return _sized(ParsedQuery(match.capability, _args_for(match.capability, ex), extra=extra), ex)


#: "buy 1 btc now", "sell 20 eth on kraken immediately": an order given as an instruction to act (no
#: question, no word asking for an analysis: cost, slippage, compare... make the rule explicit).
#: A terse "buy 5 BTC" stays a question about that order's cost.
_BARE_ORDER_RE: Final = lazy_re(
    r"^\s*(?:please\s+|pls\s+|ok\s+|just\s+)?(?:market\s+)?(?:buy|sell|short|long|dump|ape)\b[^?]*"
    r"\b(?:now|immediately|asap|right\s+away|straight\s+away|at\s+market|go)\s*[.!]*\s*$"
)
_BARE_ORDER: Final = (
    "trade_execution: the assistant analyses liquidity and never places orders; ask what the order "
    "would cost (its slippage, the best venue or a routing plan)"
)


#: A liquidity metric of the stored history, by the words that name it (checked in order).
_HISTORY_METRICS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("spread_bps", lazy_re(r"\bspre+a?ds?\b")),
    ("imbalance", lazy_re(r"\bimbalance")),
    ("microprice", lazy_re(r"\bmicro[\s-]?price")),
    ("bid_depth", lazy_re(r"\bbids?[\s-]+(?:side\s+)?depth\b|\bdepth\s+(?:on|of)\s+the\s+bids?\b")),
    (
        "ask_depth",
        lazy_re(
            r"\b(?:asks?|offers?)[\s-]+(?:side\s+)?depth\b|\bdepth\s+(?:on|of)\s+the\s+(?:asks?|offers?)\b"
        ),
    ),
    ("depth", lazy_re(r"\bdepth|\bliqu?idi?t?y\b|\bdeep(?:est)?\b|\bthinn?(?:est)?\b")),
    ("mid", lazy_re(r"\bmid(?:[\s-]?price|point)?\b")),
)
#: Wording that asks how a liquidity metric moved over time, or when it peaked.
_HISTORY_CHANGE_RE: Final = lazy_re(
    r"\bchang(?:e|ed|es|ing)\b|\bevol(?:v|ution)|\bover\s+(?:the\s+)?(?:last|past|time)\b|\bhistor(?:y|ical)\b"
    r"|\bwhen\s+(?:was|were|did|is)\b|\bat\s+what\s+time\b|\bwid(?:est|er)\b|\bnarrow(?:est|er)\b"
    r"|\btight(?:est|er)\b|\bdeep(?:est|er)\b|\bthinn(?:est|er)\b|\bpeak(?:ed)?\b|\btrend"
    r"|\bmin(?:imum)?\s*(?:and|&|/|\+)\s*max(?:imum)?\b|\blowest\b|\bhighest\b|\bbottom(?:ed)?\b|\bhighs?\s*(?:and|&|/)\s*lows?\b|\bago\b|\bsince\b"
    # a recent window shorter than a day ("past 5 minutes", "last 2 hours"): candles do not go that fine,
    # the per-second liquidity history does
    r"|\b(?:last|past|previous|prior)\s+(?:\d+(?:\.\d+)?\s*)?(?:seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b"
)
_HISTORY_LOOKBACK_RE: Final = lazy_re(
    r"\b(?:last|past|previous|prior)\s+(?:(?P<num>\d+(?:\.\d+)?)\s*)?"
    r"(?P<unit>seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)\b"
)
#: Depth said in base units ("in base units", "in coins") or in quote units ("in usd", "notional").
_DEPTH_UNIT_RE: Final = lazy_re(
    r"\bin\s+(?:(?P<base>base(?:\s+units?|\s+currency)?|coins?|contracts)|quote(?:\s+units?)?|usd[tc]?|dollars|notional)\b"
)
_HISTORY_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _liquidity_history_args(ex: _Extraction) -> dict[str, Any] | None:
    """``metric`` plus ``lookback_s`` or ``period`` when the question asks how a liquidity metric
    (spread, depth, imbalance, microprice, mid) moved over time or when it peaked; else None."""
    low = ex.low
    if ex.range is None and not _HISTORY_CHANGE_RE.search(low):
        return None  # a span of time ("from T1 to T2") is a history question by itself
    metric = next((name for name, rx in _HISTORY_METRICS if rx.search(low)), None)
    if metric is None:
        return None
    out: dict[str, Any] = {"metric": metric}
    if ex.range is not None:
        out["start"], out["end"] = ex.range
    if metric.endswith("depth") and (unit := _DEPTH_UNIT_RE.search(low)) is not None:
        out["unit"] = "base" if unit.group("base") else "quote"
    m = _HISTORY_LOOKBACK_RE.search(low)
    if ex.range is not None:
        pass  # the span is stated
    elif m:
        unit = m.group("unit")
        letter = "m" if unit.startswith("mi") else unit[0]
        out["lookback_s"] = _number(m.group("num") or "1") * _HISTORY_UNIT_S[letter]
    elif re.search(r"\btoday\b|\bthis\s+(?:morning|session)\b|\bsince\s+(?:(?:utc\s+)?midnight|00:00)", low):
        out["period"] = "today"
    elif ex.lookback_days is not None or ex.lookback_hours is not None:
        out["lookback_s"] = (ex.lookback_days or 0) * 86_400 + (ex.lookback_hours or 0) * 3600
    return out


def _sized(parsed: ParsedQuery, ex: _Extraction) -> ParsedQuery:
    """``refuse`` (``invalid_size``) when an order question states a negative or zero size/notional.

    Only for capabilities that take an order amount: an alert threshold may be negative
    ("imbalance below -0.5")."""
    allowed = _allowed(parsed.capability)
    if ex.bad_quantity is None or not ("size" in allowed or "notional" in allowed):
        return parsed
    return ParsedQuery(
        "refuse",
        {},
        # No digit of its own in the text: the answer's grounding check accepts only numbers from
        # the question or a tool result.
        f"invalid_size: order sizes must be greater than zero, and the question asks for "
        f'"{ex.bad_quantity}"; ask again with a positive size',
    )
