"""Fallback import of the demo cluster when the subscriptions CLI (alerts issue) is not installed."""

from __future__ import annotations

from pathlib import Path

import yaml

from tenderwatch.storage.db import session_scope
from tenderwatch.storage.subscriptions import Channel, Cluster, Company, Profile


def insert_cluster(path: Path) -> None:
    """Insert the clusters of ``path`` (issue-6 YAML) as they are; for the demo's fresh database only."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    with session_scope() as session:
        for cluster_data in data["clusters"]:
            cluster = Cluster(name=cluster_data["name"])
            session.add(cluster)
            session.flush()
            for company_data in cluster_data["companies"]:
                assert cluster.id is not None
                company = Company(
                    cluster_id=cluster.id, name=company_data["name"], timezone=company_data["timezone"]
                )
                session.add(company)
                session.flush()
                assert company.id is not None
                for channel in company_data["channels"]:
                    kind, _, target = channel.partition(":")
                    if kind == "email":
                        session.add(Channel(company_id=company.id, kind="email", target=target))
                    else:
                        session.add(Channel(company_id=company.id, kind="apprise", target=channel))
                for sub in company_data["subscriptions"]:
                    session.add(
                        Profile(
                            company_id=company.id,
                            name=sub["name"],
                            categories=sub.get("categories", []),
                            keywords=sub.get("keywords", []),
                            exclude=sub.get("exclude", []),
                            sources=sub.get("sources", []),
                            min_score=sub.get("min_score", 0.0),
                            frequency=sub.get("frequency", "instant"),
                        )
                    )
