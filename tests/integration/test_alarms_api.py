"""Alarm API and pages: tenant-scoped lists with filters, acknowledgement, profiles (managers only, precise 422s),
the ticket's telemetry snapshot, the alarm list page with its acknowledge button in zh and en."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import AuditRecord
from incucare.adapters.db.tables_alarms import Alarm, AlarmProfile
from incucare.adapters.db.tables_telemetry import TelemetryReading
from incucare.domain.telemetry import Reading
from incucare.services import alarms
from tests.conftest import FakeClock
from tests.network import login_page
from tests.world import World

IVF = "SN-IVF-001"


def raise_alarms(session_factory: sessionmaker[Session], world: World, clock: FakeClock) -> None:
    """A critical over-temperature on the IVF device (ticket) and a minor water-low on a GMP device."""
    with session_factory() as s:
        rows = [Reading(serial=IVF, ts=clock.now, temp_c=40.2, co2_pct=5.0)]
        s.execute(insert(TelemetryReading), [{"device_id": world.devices[IVF], "ts": clock.now, "temp_c": 40.2,
                                              "co2_pct": 5.0, "received_at": clock.now}])
        alarms.on_readings(s, {world.devices[IVF]: rows,
                               world.devices["SN-GMP-002"]: [Reading(serial="SN-GMP-002", ts=clock.now,
                                                                     water_low=True)]}, now=clock.now)
        s.commit()


def test_list_is_tenant_scoped_and_filtered(client, login, session_factory, world, clock) -> None:
    raise_alarms(session_factory, world, clock)
    everything = client.get("/api/v1/alarms", headers=login("agent")).json()
    assert everything["total"] == 2
    mine = client.get("/api/v1/alarms", headers=login("customer")).json()
    assert [a["device_serial"] for a in mine["items"]] == [IVF]
    item = mine["items"][0]
    assert (item["severity"], item["state"], item["alarm_type"]) == ("critical", "active_unack", "over_temperature")
    assert item["type_label"]["zh"] == "超温" and item["ticket_id"] is not None
    assert client.get("/api/v1/alarms", headers=login("gmpuser")).json()["items"][0]["alarm_type"] == "water_low"
    assert client.get("/api/v1/alarms", params={"severity": "critical"}, headers=login("agent")).json()["total"] == 1
    assert client.get("/api/v1/alarms", params={"device": "SN-GMP-002", "state": "active_unack"},
                      headers=login("agent")).json()["total"] == 1
    assert client.get("/api/v1/alarms", params={"customer_id": world.customers["gmp"]},
                      headers=login("customer")).json()["total"] == 0  # another customer's filter shows nothing
    bad = client.get("/api/v1/alarms", params={"state": "burning"}, headers=login("agent"))
    assert bad.status_code == 422
    assert client.get("/api/v1/alarms").status_code == 401


def test_ack_over_the_api(client, login, session_factory, world, clock) -> None:
    raise_alarms(session_factory, world, clock)
    with session_factory() as s:
        ivf_alarm = s.scalars(select(Alarm.id).where(Alarm.device_id == world.devices[IVF])).one()
    assert client.post(f"/api/v1/alarms/{ivf_alarm}/ack", json={}, headers=login("gmpuser")).status_code == 404
    r = client.post(f"/api/v1/alarms/{ivf_alarm}/ack", json={"note": "培养皿已转移"}, headers=login("customer"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "active_ack" and r.json()["ack_note"] == "培养皿已转移"
    again = client.post(f"/api/v1/alarms/{ivf_alarm}/ack", headers=login("agent"))
    assert again.status_code == 409
    assert client.post(f"/api/v1/alarms/{ivf_alarm}/ack", json={"note": "x", "extra": 1},
                       headers=login("agent")).status_code == 422
    assert client.post("/api/v1/alarms/999999/ack", headers=login("agent")).status_code == 404


def test_profiles_over_the_api(client, login, session_factory, world) -> None:
    model = world.models["hf90"]
    r = client.get(f"/api/v1/alarm-profiles/{model}", headers=login("customer"))
    assert r.status_code == 200 and r.json()["stored"] is False
    config = r.json()["config"]
    assert config["co2"] == {"enabled": True, "setpoint": 5.0, "band": 0.5, "minutes": 15.0, "severity": "major"}
    config["temperature"]["minutes"] = 5
    assert client.put(f"/api/v1/alarm-profiles/{model}", json=config, headers=login("agent")).status_code == 403
    bad = client.put(f"/api/v1/alarm-profiles/{model}", json={"co2": {"band": "wide"}}, headers=login("manager"))
    assert bad.status_code == 422 and "co2.band" in bad.text
    with session_factory() as s:
        assert s.scalar(select(AlarmProfile)) is None  # nothing written on refusal
    ok = client.put(f"/api/v1/alarm-profiles/{model}", json=config, headers=login("manager"))
    assert ok.status_code == 200 and ok.json()["config"]["temperature"]["minutes"] == 5
    assert client.get(f"/api/v1/alarm-profiles/{model}", headers=login("agent")).json()["stored"] is True
    assert client.get("/api/v1/alarm-profiles/default", headers=login("agent")).json()["stored"] is False
    assert client.get("/api/v1/alarm-profiles/nope", headers=login("agent")).status_code == 404
    assert client.get("/api/v1/alarm-profiles/99999", headers=login("agent")).status_code == 404
    with session_factory() as s:
        assert s.scalars(select(AuditRecord.actor_name).where(AuditRecord.entity == "alarm_profile")).all()


def test_ticket_snapshot_endpoint(client, login, session_factory, world, clock) -> None:
    raise_alarms(session_factory, world, clock)
    with session_factory() as s:
        ticket_id = s.scalars(select(Alarm.ticket_id).where(Alarm.device_id == world.devices[IVF])).one()
    snap = client.get(f"/api/v1/tickets/{ticket_id}/telemetry-snapshot", headers=login("customer")).json()
    assert snap["serial"] == IVF and snap["fields"]["temp_c"][0][1] == 40.2 and snap["marks"]
    assert client.get(f"/api/v1/tickets/{ticket_id}/telemetry-snapshot",
                      headers=login("gmpuser")).status_code == 404






def test_alarm_page_lists_and_acknowledges_in_both_languages(client, session_factory, world, clock) -> None:
    raise_alarms(session_factory, world, clock)
    csrf = login_page(client, "customer")
    page = client.get("/alarms")
    assert page.status_code == 200 and 'data-nav="alarms"' in page.text
    assert "超温" in page.text and IVF in page.text and "SN-GMP-002" not in page.text
    with session_factory() as s:
        alarm_id = s.scalars(select(Alarm.id).where(Alarm.device_id == world.devices[IVF])).one()
    assert f'data-testid="ack-{alarm_id}"' in page.text
    en = client.get("/alarms", params={"lang": "en"}).text
    assert "Over-temperature" in en and "Acknowledge" in en
    r = client.post(f"/alarms/{alarm_id}/ack", data={"csrf": csrf, "note": "看过了", "back": "/alarms"})
    assert r.status_code == 200 and "Alarm acknowledged" in r.text  # the language chosen last sticks
    assert f'data-testid="ack-{alarm_id}"' not in r.text and "看过了" in r.text
    with session_factory() as s:
        acked = s.get(Alarm, alarm_id)
        assert acked is not None and acked.state == "active_ack" and acked.acked_by_id == world.users["customer"]


def test_profile_page_edits_for_managers_only(client, session_factory, world, clock) -> None:
    csrf = login_page(client, "agent")
    page = client.get("/alarms/profiles", params={"model": world.models["hf90"]})
    assert page.status_code == 200 and 'data-testid="save-profile"' not in page.text
    csrf = login_page(client, "manager")
    page = client.get("/alarms/profiles", params={"model": world.models["hf90"]})
    assert 'data-testid="save-profile"' in page.text and "CO2 偏离" in page.text
    form = {"csrf": csrf, "model": str(world.models["hf90"]),
            "temperature_enabled": "1", "temperature_setpoint": "37", "temperature_band": "0.5",
            "temperature_minutes": "10", "temperature_severity": "major",
            "co2_enabled": "1", "co2_setpoint": "6.0", "co2_band": "0.4", "co2_minutes": "12", "co2_severity": "major",
            "over_temperature_enabled": "1", "over_temp_delta": "2", "over_temperature_severity": "critical",
            "door_open_enabled": "1", "door_open_minutes": "5", "door_open_severity": "minor",
            "offline_enabled": "1", "offline_minutes": "10", "offline_severity": "minor",
            "water_low_enabled": "1", "water_low_severity": "minor", "power_loss_severity": "major",
            "door_grace_minutes": "8", "call_tree_0": "0", "call_tree_1": "5", "call_tree_2": "20",
            "ivf_culture_critical": "1", "faults": '{"E01": {"category": "co2_sensor", "severity": "major"}}'}
    r = client.post("/alarms/profiles", data=form)
    assert r.status_code == 200 and "报警规则已保存" in r.text
    with session_factory() as s:
        profile = alarms.get_profile(s, alarms.RMS, world.models["hf90"])[0]
    assert profile.co2.setpoint == 6.0 and profile.call_tree_minutes == (0, 5, 20)
    assert not profile.power_loss.enabled and list(profile.faults) == ["E01"]
    r = client.post("/alarms/profiles", data={**form, "co2_band": "abc"})
    assert "co2_band" in r.text
    r = client.post("/alarms/profiles", data={**form, "faults": "{oops"})
    assert "JSON" in r.text
    with session_factory() as s:
        assert alarms.get_profile(s, alarms.RMS, world.models["hf90"])[0].co2.band == 0.4
