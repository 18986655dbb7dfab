"""The MQTT shared-subscription group: one per installation unless set."""

from __future__ import annotations

from incucare.config import Settings


def test_installations_on_one_broker_get_their_own_group_and_workers_of_one_share_it() -> None:
    plant = Settings(database_url="postgresql+psycopg://svc@db1/incucare", secret_key="k" * 24)
    worker = Settings(database_url="postgresql+psycopg://svc@db1/incucare", secret_key="k" * 24)
    laptop = Settings(database_url="sqlite:///var/incucare.db", secret_key="k" * 24)
    assert plant.ingest_group == worker.ingest_group != laptop.ingest_group
    assert plant.ingest_group.startswith("ingest-")
    chosen = Settings(database_url="sqlite:///var/incucare.db", secret_key="k" * 24, mqtt_group="fleet-a")
    assert chosen.ingest_group == "fleet-a"
    assert Settings(database_url="sqlite:///x.db", secret_key="k" * 24, mqtt_group="").ingest_group == ""
