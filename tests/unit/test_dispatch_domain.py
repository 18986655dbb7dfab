"""The travel model and the dispatch ranking, with hand-checked numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incucare.domain.dispatch import Engineer, Job, PartSource, hard_filter, rank
from incucare.domain.travel import GeoPoint, Mode, RoadRailAirModel, format_minutes, great_circle_km

WUHAN = GeoPoint(30.5928, 114.3055)
URUMQI = GeoPoint(43.8256, 87.6168)
CHANGSHA = GeoPoint(28.2282, 112.9388)
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def test_great_circle_matches_known_city_distances():
    assert great_circle_km(WUHAN, CHANGSHA) == pytest.approx(297, abs=5)
    assert great_circle_km(WUHAN, URUMQI) == pytest.approx(2765, abs=20)
    assert great_circle_km(WUHAN, WUHAN) == 0


def test_short_trips_drive_long_trips_take_the_train_or_fly():
    model = RoadRailAirModel()
    near = model.estimate(WUHAN, GeoPoint(30.55, 114.34))
    assert near.mode is Mode.CAR and near.minutes < 15
    mid = model.estimate(WUHAN, CHANGSHA)
    assert mid.mode is Mode.RAIL and 3 * 60 < mid.minutes < 4 * 60
    far = model.estimate(WUHAN, URUMQI)
    assert far.mode is Mode.FLIGHT and far.minutes < 9 * 60  # not "38 h by car"
    by_car = far.km * model.road_factor / model.car_kmh * 60
    assert by_car > 60 * 60


def test_format_minutes_reads_naturally():
    assert format_minutes(190) == "3小时10分" and format_minutes(190, "en") == "3 h 10"
    assert format_minutes(45, "en") == "45 min"


def _engineer(uid, where, *, skills=("co2",), tools=("co2_analyser",), van=None, point=None, jobs=0, duty=True,
              certs=()):
    return Engineer(user_id=uid, name=f"E{uid}", position=where, service_point=WUHAN, skills=frozenset(skills),
                    certifications=frozenset(certs), tools=frozenset(tools), on_duty=duty, open_jobs=jobs, max_jobs=4,
                    van_parts=van or {}, service_point_parts=point or {})


JOB = Job(location=GeoPoint(30.55, 114.34), skills=frozenset({"co2"}), model="HF90",
          tools=frozenset({"co2_analyser"}), parts=("IR-CO2-01",), onsite_deadline=NOW + timedelta(hours=4), now=NOW)


def test_hard_rules_exclude_with_the_reason():
    assert hard_filter(JOB, _engineer(1, WUHAN)) is None
    assert "skills" in hard_filter(JOB, _engineer(2, WUHAN, skills=("heating",))).en
    assert "tools" in hard_filter(JOB, _engineer(3, WUHAN, tools=())).en
    assert "duty" in hard_filter(JOB, _engineer(4, WUHAN, duty=False)).en
    assert "full" in hard_filter(JOB, _engineer(5, WUHAN, jobs=4)).en
    assert "certified" in hard_filter(JOB, _engineer(6, WUHAN, certs=("HF100",))).en
    assert hard_filter(JOB, _engineer(7, WUHAN, certs=("HF90",))) is None


def test_the_part_in_the_van_beats_a_slightly_nearer_engineer_without_it():
    near_no_part = _engineer(1, GeoPoint(30.56, 114.33), point={"IR-CO2-01": 1})
    farther_with_part = _engineer(2, GeoPoint(30.60, 114.25), van={"IR-CO2-01": 1})
    ranked, excluded = rank(JOB, [near_no_part, farther_with_part], RoadRailAirModel(), hq_parts={},
                            hq_transfer_minutes=1440)
    assert [c.engineer.user_id for c in ranked] == [2, 1] and not excluded
    assert ranked[0].part_source is PartSource.VAN and ranked[1].part_source is PartSource.SERVICE_POINT
    assert ranked[1].eta_minutes >= ranked[1].travel_minutes + 30


def test_a_missed_deadline_and_workload_push_a_candidate_down_and_the_reasons_say_so():
    busy = _engineer(1, GeoPoint(30.55, 114.34), van={"IR-CO2-01": 1}, jobs=3)
    free = _engineer(2, GeoPoint(30.52, 114.30), van={"IR-CO2-01": 1})
    far = _engineer(3, CHANGSHA, van={"IR-CO2-01": 1})
    tight = Job(location=JOB.location, skills=JOB.skills, model="HF90", tools=JOB.tools, parts=JOB.parts,
                onsite_deadline=NOW + timedelta(hours=2), now=NOW)
    ranked, _ = rank(tight, [busy, free, far], RoadRailAirModel(), hq_parts={}, hq_transfer_minutes=1440)
    assert [c.engineer.user_id for c in ranked] == [2, 1, 3]
    assert ranked[-1].meets_onsite_deadline is False
    assert any("misses the on-site deadline" in r.en for r in ranked[-1].reasons)
    assert any("3 open jobs" in r.en for r in ranked[1].reasons)


def test_only_hq_stock_means_waiting_for_the_transfer():
    hq_only = _engineer(1, GeoPoint(30.55, 114.34))
    ranked, _ = rank(JOB, [hq_only], RoadRailAirModel(), hq_parts={"IR-CO2-01": 5}, hq_transfer_minutes=1440)
    assert ranked[0].part_source is PartSource.HQ_TRANSFER and ranked[0].eta_minutes == 1440
    nowhere, _ = rank(JOB, [hq_only], RoadRailAirModel(), hq_parts={}, hq_transfer_minutes=1440)
    assert nowhere[0].part_source is PartSource.UNAVAILABLE
