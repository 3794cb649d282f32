"""Import clusters, companies, profiles and channels from YAML/JSON (``tenderwatch subscriptions import``).

The whole file is validated before anything is written; a problem is reported with its place
(``clusters[0].companies[1].channels[0]: invalid email address 'x@'``) and nothing is imported. Import is
declarative and idempotent: records are matched by name (channels by target), changed fields are updated,
and re-importing the same file changes nothing. For each company in the file, channels no longer listed are
deactivated and profiles no longer listed are paused (never deleted: their alert history stays).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, select

from tenderwatch.alerts.channels import ChannelError, mask, parse_channel
from tenderwatch.config import get_settings
from tenderwatch.dates import now_utc
from tenderwatch.storage.subscriptions import Channel, Cluster, Company, Profile

#: Categories the classifier produces (the relevance module may extend them with ``CATEGORIES``).
DEFAULT_CATEGORIES = ("laser_photonics", "engineering")
Status = Literal["planned", "active"]
DEFAULT_STATUSES: tuple[Status, ...] = ("planned", "active")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class SubscriptionsFileError(ValueError):
    """The file cannot be imported; ``str()`` lists every problem with its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def known_categories() -> list[str]:
    from tenderwatch import relevance

    return list(getattr(relevance, "CATEGORIES", DEFAULT_CATEGORIES))


def known_sources() -> list[str]:
    """Every source ``crawl`` knows (spiders, configured ``feed:<slug>`` feeds) plus any named in settings."""
    from tenderwatch.crawl import available_sources

    return sorted(set(available_sources()) | set(get_settings().sources))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class ProfileSpec(_Strict):
    name: str = Field(min_length=1, max_length=255)
    categories: list[str] = Field(default_factory=list)
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    keywords: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    cpv_prefixes: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("cpv", "cpv_prefixes")
    )
    sources: list[str] = Field(default_factory=list)
    buyers: list[str] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=lambda: list(DEFAULT_STATUSES))
    min_days_left: int | None = Field(default=None, ge=0)
    value_min: float | None = Field(default=None, ge=0)
    value_max: float | None = Field(default=None, ge=0)
    frequency: Literal["instant", "daily", "weekly"] = "instant"
    reminder_days: list[int] | None = None
    paused: bool = False

    @field_validator("cpv_prefixes")
    @classmethod
    def _cpv(cls, value: list[str]) -> list[str]:
        for code in value:
            digits = code.split("-")[0]
            if not digits.isdigit() or not 1 <= len(digits) <= 8:
                raise ValueError(f"CPV prefix {code!r} must be 1–8 digits")
        return [code.split("-")[0] for code in value]

    @field_validator("reminder_days")
    @classmethod
    def _days(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(day < 1 or day > 365 for day in value):
            raise ValueError("reminder days must be between 1 and 365")
        return sorted(set(value), reverse=True) if value is not None else None


class CompanySpec(_Strict):
    name: str = Field(min_length=1, max_length=255)
    timezone: str = "Europe/Brussels"
    digest_hour: int = Field(default=8, ge=0, le=23)
    weekly_day: int | str = 0
    active: bool = True
    channels: list[str] = Field(default_factory=list)
    subscriptions: list[ProfileSpec] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r} (use an IANA name such as Europe/Vilnius)"
            ) from None
        return value

    @field_validator("weekly_day")
    @classmethod
    def _weekday(cls, value: int | str) -> int:
        if isinstance(value, str):
            if value.lower() not in WEEKDAYS:
                raise ValueError(f"weekly_day must be 0–6 or a weekday name, not {value!r}")
            return WEEKDAYS.index(value.lower())
        if not 0 <= value <= 6:
            raise ValueError("weekly_day must be 0 (Monday) … 6 (Sunday)")
        return value


class ClusterSpec(_Strict):
    name: str = Field(min_length=1, max_length=128)
    companies: list[CompanySpec] = Field(default_factory=list)


class SubscriptionsFile(_Strict):
    clusters: list[ClusterSpec]


# --- validation ----------------------------------------------------------------------------------


def _place(loc: Iterable[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "file"


def load_file(path: Path) -> SubscriptionsFile:
    """Parse and validate the file completely; :class:`SubscriptionsFileError` lists every problem."""
    try:
        raw_text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SubscriptionsFileError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    try:
        data = json.loads(raw_text) if path.suffix.lower() == ".json" else yaml.safe_load(raw_text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SubscriptionsFileError(
            [f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}"]
        ) from None
    if not isinstance(data, dict):
        raise SubscriptionsFileError([f"{path}: expected a mapping with a 'clusters' list at the top"])
    try:
        spec = SubscriptionsFile.model_validate(data)
    except ValidationError as exc:
        raise SubscriptionsFileError(
            [f"{_place(err['loc'])}: {err['msg']}" for err in exc.errors()]
        ) from None
    problems = semantic_problems(spec)
    if problems:
        raise SubscriptionsFileError(problems)
    return spec


def semantic_problems(
    spec: SubscriptionsFile,
    *,
    categories: list[str] | None = None,
    sources: list[str] | None = None,
    check_channel: Callable[[str], object] = parse_channel,
) -> list[str]:
    """Problems pydantic cannot see: unknown categories/sources, bad channels, duplicate names."""
    cats = set(categories if categories is not None else known_categories())
    srcs = set(sources if sources is not None else known_sources())
    problems: list[str] = []
    _dupes(problems, "clusters", [c.name for c in spec.clusters])
    for ci, cluster in enumerate(spec.clusters):
        _dupes(problems, f"clusters[{ci}].companies", [c.name for c in cluster.companies])
        for mi, company in enumerate(cluster.companies):
            at = f"clusters[{ci}].companies[{mi}]"
            targets: list[str] = []
            for hi, channel in enumerate(company.channels):
                try:
                    parsed = check_channel(channel)
                except ChannelError as exc:
                    problems.append(f"{at}.channels[{hi}]: {exc}")
                    continue
                target = getattr(parsed, "target", channel)
                if target in targets:
                    problems.append(f"{at}.channels[{hi}]: duplicate channel {mask(target)}")
                targets.append(target)
            _dupes(problems, f"{at}.subscriptions", [p.name for p in company.subscriptions])
            for pi, profile in enumerate(company.subscriptions):
                pat = f"{at}.subscriptions[{pi}]"
                problems += [
                    f"{pat}.categories: unknown category {c!r} (known: {', '.join(sorted(cats))})"
                    for c in profile.categories
                    if c not in cats
                ]
                problems += [
                    f"{pat}.sources: unknown source {s!r} (known: {', '.join(sorted(srcs))})"
                    for s in profile.sources
                    if s not in srcs
                ]
                low, high = profile.value_min, profile.value_max
                if low is not None and high is not None and low > high:
                    problems.append(f"{pat}: value_min is above value_max")
    return problems


def _dupes(problems: list[str], where: str, names: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            problems.append(f"{where}[{index}]: duplicate name {name!r}")
        seen.add(name)


# --- writing -------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: dict[str, int] = field(
        default_factory=lambda: {"cluster": 0, "company": 0, "profile": 0, "channel": 0}
    )
    updated: dict[str, int] = field(
        default_factory=lambda: {"cluster": 0, "company": 0, "profile": 0, "channel": 0}
    )
    deactivated: int = 0

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values()) or bool(self.deactivated)


def _apply(row: Any, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def import_subscriptions(session: Session, spec: SubscriptionsFile) -> ImportReport:
    """Write a validated file into the caller's transaction (all or nothing)."""
    report = ImportReport()
    default_reminders = list(get_settings().reminder_days)
    for cluster_spec in spec.clusters:
        cluster = session.exec(select(Cluster).where(Cluster.name == cluster_spec.name)).first()
        if cluster is None:
            cluster = Cluster(name=cluster_spec.name)
            session.add(cluster)
            session.flush()
            report.created["cluster"] += 1
        assert cluster.id is not None
        for company_spec in cluster_spec.companies:
            _import_company(session, cluster.id, company_spec, default_reminders, report)
    session.flush()
    return report


def _import_company(
    session: Session, cluster_id: int, spec: CompanySpec, default_reminders: list[int], report: ImportReport
) -> None:
    values: dict[str, Any] = {
        "timezone": spec.timezone,
        "digest_hour": spec.digest_hour,
        "weekly_day": int(spec.weekly_day),
        "active": spec.active,
    }
    company = session.exec(
        select(Company).where(Company.cluster_id == cluster_id, Company.name == spec.name)
    ).first()
    if company is None:
        company = Company(cluster_id=cluster_id, name=spec.name, **values)
        session.add(company)
        session.flush()
        report.created["company"] += 1
    elif _apply(company, values):
        session.add(company)
        report.updated["company"] += 1
    assert company.id is not None
    _import_channels(session, company.id, spec.channels, report)
    _import_profiles(session, company.id, spec.subscriptions, default_reminders, report)


def _import_channels(session: Session, company_id: int, channels: list[str], report: ImportReport) -> None:
    existing = {c.target: c for c in session.exec(select(Channel).where(Channel.company_id == company_id))}
    wanted: set[str] = set()
    for text in channels:
        parsed = parse_channel(text)
        wanted.add(parsed.target)
        channel = existing.get(parsed.target)
        if channel is None:
            session.add(Channel(company_id=company_id, kind=parsed.kind, target=parsed.target))
            report.created["channel"] += 1
        elif _apply(channel, {"kind": parsed.kind, "active": True}):
            session.add(channel)
            report.updated["channel"] += 1
    for target, channel in existing.items():
        if target not in wanted and channel.active:
            channel.active = False
            session.add(channel)
            report.deactivated += 1


def _import_profiles(
    session: Session,
    company_id: int,
    specs: list[ProfileSpec],
    default_reminders: list[int],
    report: ImportReport,
) -> None:
    existing = {p.name: p for p in session.exec(select(Profile).where(Profile.company_id == company_id))}
    for spec in specs:
        values = spec.model_dump(exclude={"name"})
        values["statuses"] = list(spec.statuses)
        values["reminder_days"] = spec.reminder_days if spec.reminder_days is not None else default_reminders
        profile = existing.pop(spec.name, None)
        if profile is None:
            session.add(Profile(company_id=company_id, name=spec.name, **values))
            report.created["profile"] += 1
        elif _apply(profile, values):
            profile.updated_at = now_utc()
            session.add(profile)
            report.updated["profile"] += 1
    for profile in existing.values():
        if not profile.paused:
            profile.paused = True
            profile.updated_at = now_utc()
            session.add(profile)
            report.deactivated += 1
