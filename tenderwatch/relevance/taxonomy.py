"""Load the curated taxonomy (``taxonomy.yaml``) and compile it into one fast matcher.

All term patterns go into ONE regular expression shaped as a character trie, so a tender is scanned once
whatever the size of the taxonomy: at each word start the engine follows one branch per character instead of
trying hundreds of alternatives. Each pattern ends in an empty capturing group; ``match.lastindex`` says
which pattern matched. Longer continuations are tried before shorter ones, so the longest pattern at a
position wins (``laser printer`` beats ``laser*``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

CATEGORIES: tuple[str, ...] = ("laser_photonics", "engineering")

#: Japanese kana and CJK ideographs survive normalising (ITER Japan publishes in Japanese); as they are not
#: ``[a-z0-9]``, a CJK pattern matches anywhere inside CJK text, which has no spaces between words.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
_NON_ALNUM = re.compile(f"[^a-z0-9{_CJK}]+")
_DROP = re.compile(f"[^\\x00-\\x7f{_CJK}]+")
#: Latin letters glued to CJK ("irサーモグラフィ") are separated so that both sides can start a match.
_GLUED = re.compile(f"(?<=[a-z0-9])(?=[{_CJK}])|(?<=[{_CJK}])(?=[a-z0-9])")
_WILD = "\x00"  # trie atom for a stem wildcard (`*`)
_END = ""  # trie key marking "a pattern ends here"


class TaxonomyError(ValueError):
    """The taxonomy file breaks its own format (caught at load, never at classification time)."""


@dataclass(frozen=True)
class Term:
    pattern: str
    weights: tuple[float, ...]  # one per category, in CATEGORIES order


@dataclass(frozen=True)
class CpvRule:
    prefix: str
    weights: tuple[float, ...]
    label: str


@dataclass(frozen=True)
class Taxonomy:
    version: str
    threshold: float
    scale: tuple[float, ...]  # per category: score = 1 - exp(-raw / scale)
    title_boost: float
    buyer_factor: float
    description_factor: float
    repeat_bonus: float
    repeat_cap: float
    terms: tuple[Term, ...]
    cpv: dict[str, CpvRule]
    matcher: re.Pattern[str]
    group_terms: tuple[int, ...]  # capturing group n (1-based) → index into ``terms``
    cpv_lengths: tuple[int, ...]  # distinct prefix lengths, longest first

    def cpv_rule(self, code: str) -> CpvRule | None:
        """The rule of the longest prefix of ``code`` in the map, if any."""
        digits = code.strip()[:8]
        for length in self.cpv_lengths:
            rule = self.cpv.get(digits[:length]) if len(digits) >= length else None
            if rule is not None:
                return rule
        return None


def normalise(text: str) -> str:
    """Lower case with accents stripped (é→e, ą→a, ö→o), CJK kept; punctuation stays, the matcher skips it."""
    text = text.lower()
    if not text.isascii():
        text = _DROP.sub("", unicodedata.normalize("NFKD", text))
        if not text.isascii():  # CJK left
            text = _GLUED.sub(" ", text)
    return text


def _words(pattern: str) -> list[str]:
    return _NON_ALNUM.sub(" ", normalise(pattern)).split()


def _atoms(pattern: str) -> list[str]:
    words = _words(pattern.replace("*", "STEMWILDCARD"))
    if not words:
        raise TaxonomyError(f"empty pattern {pattern!r}")
    atoms: list[str] = []
    for index, word in enumerate(words):
        if index:
            atoms.append(" ")
        stem, wild, rest = word.partition("stemwildcard")
        if rest or (wild and not stem):
            raise TaxonomyError(f"pattern {pattern!r}: `*` only at the end of a word")
        atoms.extend(stem)
        if wild:
            atoms.append(_WILD)
    return atoms


def _trie_regex(patterns: list[list[str]]) -> tuple[str, tuple[int, ...]]:
    """Regex source matching any atom sequence, and the pattern index of each capturing group (1-based)."""
    trie: dict[str, Any] = {}
    for index, atoms in enumerate(patterns):
        node = trie
        for atom in atoms:
            node = node.setdefault(atom, {})
        node[_END] = index
    order: list[int] = []
    return _emit(trie, order), tuple(order)


def _emit(node: dict[str, Any], order: list[int]) -> str:
    """Longer continuations first, then the stem wildcard, then "the pattern ends here".

    Groups are numbered by their position in the source, so ``order`` is appended in emission order.
    """
    branches = []
    if " " in node:  # between words of a phrase: any run of spaces and punctuation ("x-ray", "x ray")
        branches.append("[^a-z0-9]+" + _emit(node[" "], order))
    for atom in sorted(key for key in node if key not in (_END, _WILD, " ")):
        branches.append(re.escape(atom) + _emit(node[atom], order))
    if _WILD in node:
        branches.append("[a-z0-9]*" + _emit(node[_WILD], order))
    if _END in node:
        order.append(node[_END])
        branches.append("(?![a-z0-9])()")
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def compile_taxonomy(data: dict[str, Any]) -> Taxonomy:
    """Validate the YAML structure and build the matcher; raises :class:`TaxonomyError`."""
    try:
        terms = tuple(
            Term(str(pattern), _weights(pattern, weights)) for pattern, weights in data["terms"].items()
        )
        cpv = {
            str(prefix): CpvRule(str(prefix), _weights(prefix, rule[:2]), str(rule[2]))
            for prefix, rule in data["cpv"].items()
        }
        taxonomy_args: dict[str, Any] = {
            "version": str(data["version"]),
            "threshold": float(data["threshold"]),
            "scale": _scales(data),
            "title_boost": float(data["title_boost"]),
            "buyer_factor": float(data["buyer_factor"]),
            "description_factor": float(data.get("description_factor", 1.0)),
            "repeat_bonus": float(data.get("repeat_bonus", 0.0)),
            "repeat_cap": float(data.get("repeat_cap", 1.0)),
        }
    except (KeyError, TypeError, IndexError) as exc:
        raise TaxonomyError(f"malformed taxonomy: {exc!r}") from exc
    if not all(prefix.isdigit() for prefix in cpv):
        raise TaxonomyError("CPV prefixes must be digits")
    patterns = [_atoms(term.pattern) for term in terms]
    seen: dict[str, str] = {}
    for term, atoms in zip(terms, patterns, strict=True):
        key = "".join(atoms)
        if key in seen:
            raise TaxonomyError(f"patterns {seen[key]!r} and {term.pattern!r} are the same after normalising")
        seen[key] = term.pattern
    source, group_terms = _trie_regex(patterns)
    matcher = re.compile(r"(?<![a-z0-9])" + source)
    lengths = tuple(sorted({len(prefix) for prefix in cpv}, reverse=True))
    return Taxonomy(
        terms=terms,
        cpv=cpv,
        matcher=matcher,
        group_terms=group_terms,
        cpv_lengths=lengths,
        **taxonomy_args,
    )


def _scales(data: dict[str, Any]) -> tuple[float, ...]:
    """Per-category scale: from ``needed`` (raw evidence at which each category applies), else ``scale``.

    ``needed`` reads better (engineering: 2.5 = "one medium term plus a weak one") and keeps the score
    threshold the same for every category, so an alert's ``min_score`` means the same for both.
    """
    needed = data.get("needed")
    if needed is None:
        return (float(data["scale"]),) * len(CATEGORIES)
    if not isinstance(needed, dict) or set(needed) != set(CATEGORIES):
        raise TaxonomyError(f"needed: one value per category {CATEGORIES}")
    squash = -math.log(1.0 - float(data["threshold"]))  # raw / scale at the threshold
    return tuple(float(needed[name]) / squash for name in CATEGORIES)


def _weights(name: Any, values: Any) -> tuple[float, ...]:
    weights = tuple(float(value) for value in values)
    if len(weights) != len(CATEGORIES):
        raise TaxonomyError(f"{name!r}: expected {len(CATEGORIES)} weights, got {len(weights)}")
    return weights


@cache
def default_taxonomy() -> Taxonomy:
    """The packaged taxonomy, compiled once per process."""
    text = resources.files("tenderwatch.relevance").joinpath("taxonomy.yaml").read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: 10x faster start
    return compile_taxonomy(yaml.load(text, Loader=loader))
