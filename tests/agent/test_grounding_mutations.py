"""Grounding v2 under mutation: the offline assistant's answers to varied questions on the recorded
data are perturbed programmatically (sign flip, +-10% of a figure, venue swap, field swap, wrong
verdict word); at least 98% of the perturbed answers must be flagged and none of the originals.

The perturbations are generated here with their own regular expressions (not the checker's), from
the answer text only; each one changes what the answer claims (a change that leaves the written
text as it was, e.g. +10% of 0, is not generated). Unit tests below pin each accepted writer
conversion and the false accepts of the first grounding version (issue 12).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from dataclasses import dataclass

import pytest

from market_liquidity_monitor.agent.grounding import Grounder, check_grounding
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData
from tests.support import assistant_for

# Every capability, phrased as in ../shared/eval/queries-dev.jsonl, the README and held-out sets.
QUESTIONS = [
    # order book
    "Show me the order book depth for BTC/USDT",
    "depth within 50 bps for BTC on bybit",
    "How tight is the BTC/USDT book on binance at the moment?",
    "give me bid/ask depth for ETH within 25bps",
    "What's the order book imbalance for ethereum on Binance?",
    "top of book for BTC on okx",
    # impact / liquidity yes-no
    "How much slippage would a 5 BTC market buy cause on Binance?",
    "Is there enough liquidity to execute a 10 ETH sell order?",
    "what would it cost me to buy 2.5 btc on kraken",
    "If I market sell 3 BTC on binance, how far does the price slip?",
    "What VWAP would I get buying 50 ETH?",
    "Can the book absorb a $2m BTC purchase?",
    "price impact of selling 1,000 ETH on binance",
    # max size
    "What is the largest BTC buy on binance that stays within 5 bps of slippage?",
    # compare
    "Which venue is best to sell 200 ETH?",
    "Compare BTC liquidity across venues for a 10 BTC buy",
    "I need to dump 150k USDT worth of ETH, where should I do it?",
    "binance vs bybit for buying 2 BTC, which is better?",
    "Is there any arbitrage on BTC between the venues?",
    "compare BTC on binance, okx and bybit for a $500k sell",
    "Compare the order books for ETH on Binance, Coinbase and OKX",
    # route
    "Route a 25 BTC buy across all venues and show me the savings versus sending it to one exchange",
    "Smart-route a sell of 40 ETH",
    "What's the optimal allocation across venues to buy 100 ETH?",
    "How should I slice a 60 ETH sell over the different books?",
    # backtest
    "How would buying 500 SOL have performed over the last 7 days?",
    "Backtest selling 20 ETH every 5 minutes over the past 3 days",
    "how would dumping 5000 XRP have gone in the past 7 days",
    "historical slippage for a 200 LTC sell over the last 5 days",
    # pairs
    "Hedge ratio and z-score for ETH against BTC on 1h candles",
    "Are BTC and ETH cointegrated?",
    "z-score of the XRP vs ETH spread",
    "half-life of the SOL/ETH spread on hourly bars",
    "pairs trade stats for LTC and BTC over the last 14 days",
    # price history
    "Show me BTC volatility over the past 3 days",
    "SOL price trend over the past 10 days",
    "How volatile has ETH been over the last 2 weeks?",
    # alerts
    "Alert me when the BTC spread on Binance goes above 5 bps",
    "Any liquidity alerts or anomalies on BTC in the last hour?",
    "Has anything unusual happened to ETH liquidity?",
    "list my alerts",
    # health
    "Which exchanges are healthy right now? Any circuit breakers open?",
    "Are any venue feeds stale or disconnected?",
]

VENUES = ("binance", "binancecoinm", "binanceusdm", "bybit", "okx", "kraken", "coinbase", "bitstamp", "gate")

# Figures, and the spans a perturbation must leave alone (timestamps, pairs, identifiers).
_FIG = re.compile(r"(?<![\w.:/\-+,])([-+]?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w]|\.\d)")
_PROTECTED = re.compile(
    r"\d{4}-\d{2}-\d{2}T[\d:.]+Z?|[A-Za-z][\w.\-]*/[\w.\-/:]+|[A-Za-z]+\d\w*|\w+\.\d+\.gz|\d+(?:\.\d+)?e[-+]\d+"
)


@dataclass
class Answer:
    question: str
    text: str
    calls: list[dict]


@dataclass
class Mutation:
    kind: str
    text: str
    what: str


@pytest.fixture(scope="module")
def answers(data_dir, tmp_path_factory) -> list[Answer]:
    """The offline assistant's answers (built once per module; each question in a fresh session)."""
    settings = Settings(data_dir=data_dir, home_dir=tmp_path_factory.mktemp("home"))
    assistant = assistant_for(settings, MarketData.from_recordings(settings, data_dir))

    async def run() -> list[Answer]:
        out = []
        for q in QUESTIONS:
            r = await assistant.ask(q)
            out.append(Answer(q, r.answer, r.tool_calls))
        await assistant.services.close()
        return out

    return asyncio.run(run())


# ------------------------------------------------------------------------------ perturbations


def _figures(text: str) -> list[re.Match]:
    protected = [m.span() for m in _PROTECTED.finditer(text)]
    return [m for m in _FIG.finditer(text) if not any(a <= m.start() < b for a, b in protected)]


def _replace(text: str, m: re.Match | tuple[int, int], new: str) -> str:
    a, b = m.span() if isinstance(m, re.Match) else m
    return text[:a] + new + text[b:]


def _fmt_like(old: re.Match, value: float) -> str:
    """``value`` written as ``old`` is written: same decimals, thousands separators and sign style."""
    decimals = len(old.group(3)) - 1 if old.group(3) else 0
    comma = "," in old.group(2)
    s = f"{abs(value):,.{decimals}f}" if comma else f"{abs(value):.{decimals}f}"
    sign = "-" if value < 0 else ("+" if old.group(1) == "+" else "")
    return sign + s


def _unit(m: re.Match) -> float:
    """One unit of the figure's last written digit: values closer than that are the same claim
    at the written precision (2,677.605 is both "2,677.60" and "2,677.61")."""
    return 10.0 ** -(len(m.group(3)) - 1) if m.group(3) else 1.0


def _value(m: re.Match) -> float:
    v = float(m.group(2).replace(",", "") + (m.group(3) or ""))
    return -v if m.group(1) == "-" else v


def sign_flips(text: str, rng: random.Random, k: int) -> list[Mutation]:
    out = []
    for m in _figures(text):
        v = _value(m)
        if v == 0:
            continue
        new = _fmt_like(m, -v)
        out.append(Mutation("sign_flip", _replace(text, m, new), f"{m.group()} -> {new}"))
    return rng.sample(out, min(k, len(out)))


def plus_minus_10(text: str, rng: random.Random, k: int) -> list[Mutation]:
    out = []
    for m in _figures(text):
        v = _value(m)
        factor = rng.choice((1.1, 0.9))
        for f in (factor, 2 - factor):
            new = _fmt_like(m, v * f)
            if new.lstrip("+") != m.group().lstrip("+"):
                out.append(Mutation("plus_minus_10pct", _replace(text, m, new), f"{m.group()} -> {new}"))
                break
    return rng.sample(out, min(k, len(out)))


def _venue_re(v: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w]){v}(?![\w])", re.I)


def venue_swaps(text: str, rng: random.Random, k: int) -> list[Mutation]:
    """Two venues' names swapped everywhere; a single venue renamed; or one figure of a venue's line
    swapped with the same figure of another venue's line."""
    present = [v for v in VENUES if _venue_re(v).search(text)]
    out = []
    if len(present) >= 2:
        for _ in range(3):
            a, b = rng.sample(present, 2)
            swapped = _venue_re(a).sub("\0", text)
            swapped = _venue_re(b).sub(a, swapped).replace("\0", b)
            lines_a = {i for i, line in enumerate(text.split("\n")) if _venue_re(a).search(line)}
            lines_b = {i for i, line in enumerate(text.split("\n")) if _venue_re(b).search(line)}
            if swapped != text and lines_a != lines_b:  # not just two names of one list reordered
                out.append(Mutation("venue_swap", swapped, f"{a} <-> {b} (names)"))
    elif len(present) == 1:
        a = present[0]
        b = rng.choice([v for v in VENUES if v != a])
        out.append(Mutation("venue_swap", _venue_re(a).sub(b, text), f"{a} -> {b} (name)"))
    # Figures of two venue lines ("- <venue> <pair>...") swapped at the same position.
    lines = text.split("\n")
    rows = [
        i
        for i, line in enumerate(lines)
        if re.match(r"- (\w+) ", line) and re.match(r"- (\w+)", line).group(1) in VENUES
    ]
    for _ in range(3):
        if len(rows) < 2:
            break
        i, j = rng.sample(rows, 2)
        fi, fj = _figures(lines[i]), _figures(lines[j])
        pos = [
            p
            for p in range(min(len(fi), len(fj)))
            if abs(_value(fi[p]) - _value(fj[p])) > _unit(fi[p]) + _unit(fj[p])
        ]
        if not pos:
            continue
        p = rng.choice(pos)
        new_lines = list(lines)
        new_lines[i] = _replace(lines[i], fi[p], fj[p].group())
        out.append(
            Mutation(
                "venue_swap",
                "\n".join(new_lines),
                f"line {i} figure {fi[p].group()} <- line {j}'s {fj[p].group()}",
            )
        )
    return rng.sample(out, min(k, len(out)))


def field_swaps(text: str, rng: random.Random, k: int) -> list[Mutation]:
    """One figure's value written in another figure's place in the same sentence (same unit word after)."""
    out = []
    figs = _figures(text)
    for m in figs:
        sent_start = max(
            text.rfind(". ", 0, m.start()), text.rfind("\n", 0, m.start()), text.rfind("; ", 0, m.start())
        )
        sent_end = min(
            x
            for x in (text.find(". ", m.end()), text.find("\n", m.end()), text.find("; ", m.end()), len(text))
            if x >= 0
        )
        unit = re.match(r"\s?(bps|%|[A-Z]{2,5})?", text[m.end() :]).group(1)
        others = [
            o
            for o in figs
            if o is not m
            and sent_start <= o.start() < sent_end
            and re.match(r"\s?(bps|%|[A-Z]{2,5})?", text[o.end() :]).group(1) == unit
            and o.group().lstrip("+") != m.group().lstrip("+")
            and abs(abs(_value(o)) - abs(_value(m))) > _unit(m) + _unit(o)
        ]
        if others:
            o = rng.choice(others)
            out.append(Mutation("field_swap", _replace(text, m, o.group()), f"{m.group()} <- {o.group()}"))
    return rng.sample(out, min(k, len(out)))


_VERDICTS = [
    (r"\bNo arbitrage\b", "Arbitrage opportunity"),
    (r"\bnot stationary\b", "stationary"),
    (r"(?<!not )\bstationary at\b", "not stationary at"),
    (r"\bnot cointegrated\b", "cointegrated"),
    (r"(?<!not )\bcointegrated at\b", "not cointegrated at"),
    (r"^Yes:", "No:"),
    (r"^No:", "Yes:"),
    (r"\bThere is not enough visible liquidity\b", "There is enough visible liquidity"),
    (r"\ba loss of\b", "a profit of"),
    (r"\ba profit of\b", "a loss of"),
    (r"\bcannot fill the order\b", "can fill the order"),
]


def wrong_verdicts(text: str, rng: random.Random, k: int) -> list[Mutation]:
    out = []
    for pat, new in _VERDICTS:
        m = re.search(pat, text, re.M)
        if m:
            out.append(Mutation("wrong_verdict", _replace(text, m, new), f"{m.group()} -> {new}"))
    for pat in (r"\nBest: (\w+)\.", r"best single venue \((\w+)\)"):
        m = re.search(pat, text)
        if m:
            other = [v for v in VENUES if v != m.group(1) and _venue_re(v).search(text)] or [
                v for v in VENUES if v != m.group(1)
            ]
            new = rng.choice(other)
            out.append(
                Mutation("wrong_verdict", _replace(text, m.span(1), new), f"best {m.group(1)} -> {new}")
            )
    return rng.sample(out, min(k, len(out)))


GENERATORS = [(sign_flips, 6), (plus_minus_10, 8), (venue_swaps, 3), (field_swaps, 5), (wrong_verdicts, 3)]


def mutations(answer: Answer, seed: int) -> list[Mutation]:
    rng = random.Random(seed)
    return [m for gen, k in GENERATORS for m in gen(answer.text, rng, k) if m.text != answer.text]


# ------------------------------------------------------------------------------------- tests


def test_questions_cover_every_capability(answers):
    tools = Counter(c["tool"] for a in answers for c in a.calls)
    assert len(answers) >= 40
    assert set(tools) >= {
        "order_book",
        "market_impact",
        "max_size_within_slippage",
        "compare_venues",
        "route_order",
        "backtest_execution",
        "pairs_stats",
        "price_history",
        "create_alert",
        "list_alerts",
        "liquidity_alerts",
        "venue_health",
    }, tools


def test_unperturbed_answers_are_grounded(answers):
    flagged = {
        a.question: [u.model_dump() for u in r.unsupported]
        for a in answers
        if not (r := check_grounding(a.text, a.calls, a.question)).grounded
    }
    assert flagged == {}


def test_perturbed_answers_are_flagged(answers):
    generated: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    missed = []
    for i, a in enumerate(answers):
        grounder = Grounder(a.calls, a.question)  # the facts indexed once per answer
        for m in mutations(a, seed=i):
            generated[m.kind] += 1
            if grounder.check(m.text).grounded:
                missed.append((m.kind, a.question, m.what))
            else:
                flagged[m.kind] += 1
    print("\nkind               generated  flagged      %")
    for kind in sorted(generated):
        print(
            f"{kind:<18} {generated[kind]:>9} {flagged[kind]:>8} {100 * flagged[kind] / generated[kind]:>6.1f}"
        )
    total, hit = sum(generated.values()), sum(flagged.values())
    print(f"{'total':<18} {total:>9} {hit:>8} {100 * hit / total:>6.1f}")
    for miss in missed:
        print("missed:", *miss)
    assert set(generated) == {"sign_flip", "plus_minus_10pct", "venue_swap", "field_swap", "wrong_verdict"}
    assert min(generated.values()) >= 20
    assert hit / total >= 0.98, missed
