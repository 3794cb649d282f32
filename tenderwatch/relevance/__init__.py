"""Relevance classification (laser/photonics, engineering) — interface used by the pipeline and alerts.

``classify(title, description, cpv, buyer)`` is pure; ``classification_columns(item)`` is what the pipeline
stores on each tender. The taxonomy is data (``taxonomy.yaml``) and carries the classifier version.
"""

from __future__ import annotations

from typing import Any

from tenderwatch.items import TenderItem
from tenderwatch.relevance.classifier import Classification, classify
from tenderwatch.relevance.taxonomy import CATEGORIES, default_taxonomy

__all__ = ["CATEGORIES", "Classification", "classification_columns", "classifier_version", "classify"]


def classifier_version() -> str:
    """Version of the packaged taxonomy; stored with every classification."""
    return default_taxonomy().version


def classification_columns(item: TenderItem) -> dict[str, Any]:
    """Columns (categories, scores, why, classifier_version) to store with ``item``."""
    return classify(item.title, item.description, item.cpv, item.buyer).columns()
