"""Relevance classification (laser/photonics, engineering) — interface used by the pipeline.

Placeholder until the relevance issue lands: no classification columns are produced.
"""

from __future__ import annotations

from typing import Any

from tenderwatch.items import TenderItem


def classification_columns(item: TenderItem) -> dict[str, Any]:
    """Columns (categories, scores, why, classifier_version) to store with ``item``."""
    del item
    return {}
