"""The live limit hint in the browser answers as the core judges.

``mes.js`` keeps its own comparison (it answers per keystroke, before anything is saved); this
runs that function in real Chromium over a few thousand generated entries and limits — at, just
inside and just outside each limit, signs, decimals as the recipe allows and one more, leading
and trailing zeros, spaces, and entries the core refuses (empty, letters, exponents, commas,
too many digits) — and compares each answer with :func:`mes.core.limits.parse_value` followed by
:func:`mes.core.limits.limit_status`. Where the core refuses an entry, nothing is recorded, so
the hint says nothing (``null``).
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import NOW

from mes.core.limits import InvalidValue, limit_status, parse_value

pytestmark = pytest.mark.e2e

MES_JS = Path(__file__).resolve().parents[2] / "mes" / "web" / "static" / "mes.js"
LIMITS = ("action_low", "alert_low", "alert_high", "action_high")
ODD = ["", " ", "abc", "12abc", "1e3", "1E-2", "1,5", "--5", "+-5", "Infinity", "-Infinity",
           "NaN", "0x1A", "\uff15", "\u0663", "5.5.5", "+", "-", ".", "+.", "5 5", "1_000", "$5", "5%",
           "9" * 16, "0" * 30 + "9" * 11, "1" * 41, "1." + "0" * 39, "\ufeff5"]  # fmt: skip
SPACES = [" ", "\t", "\xa0", "\u2003", "\u3000", "\x1f", "\x85", "\ufeff"]  # BOM: not a space
ZEROS = [0x660, 0x966, 0xFF10, 0x1D7CE, 0x1D7F6]  # Arabic-Indic, Devanagari, full-width, math


def core_answer(spec: dict[str, Any], text: str) -> str | None:
    """What the core makes of ``text``: its limit status, or None when it records nothing."""
    try:
        value = parse_value(spec, text, at=NOW, time_zone="UTC")
    except InvalidValue:
        return None
    return None if value is None else limit_status(value, spec).value


def spec_of(rng: random.Random) -> dict[str, Any]:
    """An input as a recipe compiles it: type, decimals and ordered limits (some absent)."""
    kind = rng.choice(["number", "number", "number", "integer"])
    decimals = None if kind == "integer" else rng.choice([None, 0, 1, 2, 3, 6])
    places = (
        0 if kind == "integer" else (rng.choice([0, 1, 2, 4]) if decimals is None else decimals)
    )
    scale = rng.choice([1, 10, 100, 1000, 10**6, 10**12])
    size = rng.choice([1, 7, 100, 10**6, 10**13])  # 10^14 + 0.000001 is beyond a float
    points = sorted(rng.sample(range(-5 * scale, 5 * scale + 1), 4))
    values: list[float | int] = []
    for point in points:
        number = Decimal(point) / Decimal(scale) * size
        number = round(number + Decimal(rng.randint(0, 99)) / 100, places)
        values.append(int(number) if places == 0 else float(number))
    values = sorted(set(values))
    limits = dict(zip(LIMITS[4 - len(values) :], values, strict=True))
    for name in LIMITS:
        if name in limits and rng.random() < 0.25:
            del limits[name]  # one-sided, alert only, action only, or no limits at all
    return {"label": "Value", "type": kind, "decimals": decimals, "required": True,
            **{name: limits.get(name) for name in LIMITS}}  # fmt: skip


def texts_near(spec: dict[str, Any], rng: random.Random) -> list[str]:
    """Entries at, just inside and just outside each limit, written as operators write them."""
    step = Decimal(1).scaleb(-(spec["decimals"] if spec["decimals"] is not None else 6))
    if spec["type"] == "integer":
        step = Decimal(1)
    texts = []
    for name in LIMITS:
        if spec[name] is None:
            continue
        limit = Decimal(str(spec[name]))
        for delta in (0, step, -step, step / 10, -step / 10, step * 3):
            number = limit + delta
            texts.append(format(number, "f"))
            texts.append(written(number, rng))
    return texts


def written(number: Decimal, rng: random.Random) -> str:
    """``number`` as someone might type it: a plus sign, leading or trailing zeros, spaces."""
    text = format(number, "f")
    form = rng.randrange(6)
    if form == 0 and not text.startswith("-"):
        return "+" + text
    if form == 1:
        return text.replace("-", "-00") if text.startswith("-") else "00" + text
    if form == 2:
        return text + ("0" if "." in text else ".0")
    if form == 3:
        return rng.choice(SPACES) + text + rng.choice(SPACES)
    if form == 4 and text.startswith(("0.", "-0.")):
        return text.replace("0.", ".", 1)
    return text + "." if "." not in text else text


def in_other_digits(text: str, rng: random.Random) -> str:
    """``text`` with its digits in another script (the core reads those as an integer's)."""
    zero = rng.choice(ZEROS)
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


def random_texts(rng: random.Random) -> list[str]:
    """Plain numbers anywhere: large, small, negative, with up to seven decimals."""
    texts = []
    for _ in range(8):
        whole = rng.choice([0, 1, rng.randint(0, 999), rng.randint(0, 10**15 - 1)])
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 7)))
        sign = rng.choice(["", "", "-", "+"])
        texts.append(f"{sign}{whole}" + (f".{fraction}" if fraction else ""))
    return texts


def attributes(spec: dict[str, Any]) -> dict[str, str]:
    """The field's ``data-*`` attributes as the phase page renders them (``str`` of each)."""
    names = {"alert_low": "alertLow", "alert_high": "alertHigh", "action_low": "actionLow",
             "action_high": "actionHigh", "decimals": "decimals"}  # fmt: skip
    shown = {names[k]: str(spec[k]) for k in names if spec[k] is not None}
    return {**shown, "type": spec["type"]}


def generated_cases(count: int = 3000, seed: int = 14) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    cases: list[tuple[str, dict[str, Any]]] = []
    while len(cases) < count:
        spec = spec_of(rng)
        texts = texts_near(spec, rng) + random_texts(rng)
        texts += [in_other_digits(t, rng) for t in rng.sample(texts, 3)] + rng.sample(ODD, 3)
        cases.extend((text, spec) for text in texts)
    return cases


def test_the_live_limit_hint_answers_as_the_core_over_generated_values(page):
    cases = generated_cases()
    page.set_content("<!doctype html><html><body></body></html>")
    page.add_script_tag(path=str(MES_JS))
    answers = page.evaluate(
        "cases => cases.map(([text, limits]) => window.MES.limitStatus(text, limits))",
        [[text, attributes(spec)] for text, spec in cases],
    )
    expected = [core_answer(spec, text) for text, spec in cases]
    assert len(answers) == len(cases) >= 3000
    assert set(expected) == {None, "ok", "alert", "action"}  # every answer is exercised
    differing = [
        (text, attributes(spec), hint, core)
        for (text, spec), hint, core in zip(cases, answers, expected, strict=True)
        if hint != core
    ]
    assert differing == [], f"{len(differing)} of {len(cases)} differ, e.g. {differing[:10]}"
