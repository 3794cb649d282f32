"""Parsing and validating the subscription-profile form (lists are typed one per line or comma-separated)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from tenderwatch.storage.subscriptions import Frequency, Profile

LIST_FIELDS = ("keywords", "exclude", "cpv_prefixes", "buyers")
CHECKBOX_FIELDS = ("categories", "sources", "statuses")


@dataclass
class ProfileForm:
    """``values``: typed Profile fields; ``text``: what the form shows back; ``errors``: what is wrong."""

    values: dict[str, Any]
    text: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_profile(cls, profile: Profile | None) -> ProfileForm:
        p = profile or Profile(company_id=0, name="")
        values: dict[str, Any] = {
            "name": p.name,
            "categories": list(p.categories),
            "min_score": p.min_score,
            "keywords": list(p.keywords),
            "exclude": list(p.exclude),
            "cpv_prefixes": list(p.cpv_prefixes),
            "sources": list(p.sources),
            "buyers": list(p.buyers),
            "statuses": list(p.statuses),
            "min_days_left": p.min_days_left,
            "value_min": p.value_min,
            "value_max": p.value_max,
            "frequency": p.frequency,
            "reminder_days": list(p.reminder_days),
        }
        text = {name: "\n".join(values[name]) for name in LIST_FIELDS}
        text.update(
            min_score=str(p.min_score),
            min_days_left="" if p.min_days_left is None else str(p.min_days_left),
            value_min="" if p.value_min is None else f"{p.value_min:g}",
            value_max="" if p.value_max is None else f"{p.value_max:g}",
            reminder_days=", ".join(str(d) for d in p.reminder_days),
        )
        return cls(values=values, text=text)


def _lines(raw: str) -> list[str]:
    parts = (part.strip() for part in re.split(r"[\n,;]", raw))
    return list(dict.fromkeys(part for part in parts if part))


def _number(raw: str, label: str, errors: list[str], *, integer: bool = False) -> Any:
    raw = raw.strip()
    if not raw:
        return None
    try:
        number = int(raw) if integer else float(raw)
    except ValueError:
        errors.append(f"{label} must be a {'whole ' if integer else ''}number")
        return None
    if number < 0:
        errors.append(f"{label} cannot be negative")
    return number


def parse_profile_form(form: FormData) -> ProfileForm:
    errors: list[str] = []
    text = {
        key: str(form.get(key, ""))
        for key in (*LIST_FIELDS, "min_score", "min_days_left", "value_min", "value_max", "reminder_days")
    }
    name = str(form.get("name", "")).strip()
    if not name or len(name) > 255:
        errors.append("the profile needs a name (at most 255 characters)")
    values: dict[str, Any] = {"name": name}
    for key in CHECKBOX_FIELDS:
        values[key] = [str(v) for v in form.getlist(key) if str(v).strip()]
    for key in LIST_FIELDS:
        values[key] = _lines(text[key])
    if any(not re.fullmatch(r"\d{1,8}", c) for c in values["cpv_prefixes"]):
        errors.append("CPV prefixes are digits, e.g. 3863 or 38636100")
    score = _number(text["min_score"], "minimum score", errors)
    if score is not None and score > 1:
        errors.append("the minimum score is between 0 and 1")
    values["min_score"] = score or 0.0
    values["min_days_left"] = _number(text["min_days_left"], "minimum days left", errors, integer=True)
    values["value_min"] = _number(text["value_min"], "minimum value", errors)
    values["value_max"] = _number(text["value_max"], "maximum value", errors)
    if (
        values["value_min"] is not None
        and values["value_max"] is not None
        and values["value_min"] > values["value_max"]
    ):
        errors.append("the minimum value is above the maximum value")
    frequency = str(form.get("frequency", Frequency.INSTANT.value))
    if frequency not in {f.value for f in Frequency}:
        errors.append(f"unknown frequency {frequency!r}")
    values["frequency"] = frequency
    days = [_number(part, "reminder days", errors, integer=True) for part in _lines(text["reminder_days"])]
    values["reminder_days"] = sorted({d for d in days if d is not None}, reverse=True)
    if not values["statuses"]:
        errors.append("choose at least one status")
    return ProfileForm(values=values, text=text, errors=errors)
