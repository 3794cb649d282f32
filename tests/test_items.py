from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tenderwatch.items import Status, TenderItem, field_validity
from tenderwatch.pipelines import drop_reason


def test_minimal_item_and_normalisation() -> None:
    item = TenderItem(
        source="esa", source_id=" 1 ", title=" Laser ", cpv=["38636100", "38636100", " "], reference="  "
    )
    assert item.source_id == "1" and item.title == "Laser"
    assert item.cpv == ["38636100"]
    assert item.reference is None
    assert item.status is Status.ACTIVE


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"source": "esa", "source_id": "1", "title": None}, "title: missing"),
        ({"source": "esa", "source_id": "1", "title": "  "}, "title: empty"),
        ({"source": "esa", "source_id": None, "title": "x"}, "source_id: missing"),
        ({"source": "esa", "title": "x"}, "source_id: missing"),
    ],
)
def test_drop_reasons_are_short_and_stable(data: dict, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        TenderItem.model_validate(data)
    assert drop_reason(info.value) == reason


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        TenderItem(source="s", source_id="1", title="t", deadline_at=datetime(2026, 1, 1))


def test_value_range_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="value_min"):
        TenderItem(source="s", source_id="1", title="t", value_min=10, value_max=1)


def test_field_validity() -> None:
    planned = {"reference": "1-1", "title": "t", "status": "planned"}
    assert field_validity(planned)["deadline_or_planned"] is True
    active = {
        "reference": None,
        "title": "t",
        "status": "active",
        "deadline_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    assert field_validity(active) == {
        "reference": False,
        "title": True,
        "deadline_or_planned": True,
        "url": False,
        "published_at": False,
    }
