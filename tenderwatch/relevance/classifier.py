"""Pure classification of one tender: scores in [0, 1] per category, the categories above threshold, and why.

Evidence is additive and readable: every matched taxonomy term and CPV prefix adds its weight to each
category (negative cues subtract), and the reasons list exactly those contributions, strongest first.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tenderwatch.relevance.taxonomy import CATEGORIES, Taxonomy, default_taxonomy, normalise

#: Reasons kept per category (strongest first) — enough to explain, short enough for an alert line.
MAX_REASONS = 8


@dataclass(frozen=True)
class Evidence:
    """One contribution: a matched term or CPV prefix with its weight per category."""

    reason: str  # "term 'pulsed laser'" / "CPV 38636100 (lasers)" / "buyer 'laser'"
    weights: tuple[float, ...]


@dataclass(frozen=True)
class Classification:
    """Result for one tender; ``why`` maps each category to its reasons (JSON-safe)."""

    categories: list[str]
    scores: dict[str, float]
    why: dict[str, list[str]]
    version: str
    raw: dict[str, float] = field(default_factory=dict, compare=False)

    def columns(self) -> dict[str, Any]:
        """The Tender columns this result fills."""
        return {
            "categories": list(self.categories),
            "scores": dict(self.scores),
            "why": {name: list(reasons) for name, reasons in self.why.items()},
            "classifier_version": self.version,
        }


def classify(
    title: str,
    description: str | None = None,
    cpv: Iterable[str] | None = None,
    buyer: str | None = None,
    *,
    taxonomy: Taxonomy | None = None,
) -> Classification:
    """Classify one tender from its title, description, CPV codes and buyer name."""
    tax = taxonomy or default_taxonomy()
    evidence = collect_evidence(tax, title, description, cpv or (), buyer)
    return decide(tax, evidence)


def collect_evidence(
    tax: Taxonomy, title: str, description: str | None, cpv: Iterable[str], buyer: str | None
) -> list[Evidence]:
    """Every distinct contribution once: text terms (title-boosted), CPV prefixes, buyer terms."""
    found: dict[str, Evidence] = {}
    _terms(tax, description or "", tax.description_factor, found)
    _terms(tax, title, tax.title_boost, found)  # a title match replaces the same term's description match
    for code in cpv:
        rule = tax.cpv_rule(str(code))
        if rule is not None and f"cpv:{rule.prefix}" not in found:
            label = f"CPV {str(code).strip()} ({rule.label})"
            found[f"cpv:{rule.prefix}"] = Evidence(label, rule.weights)
    if buyer:
        for key, item in _matches(tax, buyer, tax.buyer_factor):
            found.setdefault(f"buyer:{key}", Evidence(f"buyer '{item[0]}'", item[1]))
    return list(found.values())


def _terms(tax: Taxonomy, text: str, factor: float, found: dict[str, Evidence]) -> None:
    for key, (surface, weights) in _matches(tax, text, factor):
        found[f"term:{key}"] = Evidence(f"term '{surface}'", weights)


def _matches(tax: Taxonomy, text: str, factor: float) -> list[tuple[int, tuple[str, tuple[float, ...]]]]:
    """``(term index, (matched text, scaled weights))`` for each distinct term found in ``text``.

    A term repeated in the text weighs more (``repeat_bonus`` per extra occurrence, up to ``repeat_cap``
    times its weight): a call about lasers says "laser" many times, a passing mention says it once.
    """
    first: dict[int, str] = {}
    counts: dict[int, int] = {}
    for match in tax.matcher.finditer(normalise(text)):
        index = tax.group_terms[(match.lastindex or 1) - 1]
        first.setdefault(index, match.group(0))
        counts[index] = counts.get(index, 0) + 1
    hits = []
    for index, matched in first.items():
        surface = matched if matched.isascii() else unicodedata.normalize("NFC", matched)  # ガ, not カ + ゛
        scale = factor * min(1.0 + tax.repeat_bonus * (counts[index] - 1), tax.repeat_cap)
        hits.append((index, (surface, tuple(w * scale for w in tax.terms[index].weights))))
    return hits


def decide(tax: Taxonomy, evidence: list[Evidence]) -> Classification:
    """Sum the evidence per category, squash into [0, 1], apply the threshold, keep the top reasons."""
    scores: dict[str, float] = {}
    raw: dict[str, float] = {}
    why: dict[str, list[str]] = {}
    for position, name in enumerate(CATEGORIES):
        contributions = [(item.weights[position], item.reason) for item in evidence if item.weights[position]]
        total = sum(weight for weight, _ in contributions)
        raw[name] = total
        scores[name] = round(1.0 - math.exp(-total / tax.scale[position]), 3) if total > 0 else 0.0
        contributions.sort(key=lambda pair: (-abs(pair[0]), pair[1]))
        why[name] = [_reason(weight, reason) for weight, reason in contributions[:MAX_REASONS]]
    categories = [name for name in CATEGORIES if scores[name] >= tax.threshold]
    return Classification(categories=categories, scores=scores, why=why, version=tax.version, raw=raw)


def _reason(weight: float, reason: str) -> str:
    return reason if weight > 0 else f"against: {reason}"
