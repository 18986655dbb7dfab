"""Field work rules: report completeness, calibration ranges, tolerance and certificates, signatures, first-time fix."""

from __future__ import annotations

import base64
import struct
import zlib
from datetime import UTC, date, datetime, timedelta

import pytest

from incucare.domain.errors import ValidationFailed
from incucare.domain.fieldwork import (
    CalibrationEntry,
    CalibrationRules,
    FollowUp,
    Outcome,
    Parameter,
    PartLine,
    ReportDraft,
    VisitFact,
    check_signature,
    decode_signature,
    find_repeats,
    first_time_fix,
    months_before,
    validate_report,
)

VISIT_DAY = date(2026, 11, 27)


def png(width: int = 4, height: int = 2) -> bytes:
    """A tiny valid PNG, as a canvas would produce."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\xff\xff\xff" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def co2(**changes: object) -> CalibrationEntry:
    values: dict[str, object] = {"parameter": "co2", "as_found": 6.4, "as_left": 5.1, "setpoint": 5.0,
                                 "reference_instrument": "GM70-0042", "reference_certificate_date": date(2026, 3, 1)}
    values.update(changes)
    return CalibrationEntry(**values)  # type: ignore[arg-type]


def draft(**changes: object) -> ReportDraft:
    values: dict[str, object] = {"diagnosis": "CO2 传感器漂移", "actions": "更换传感器并校准", "outcome": "fixed"}
    values.update(changes)
    return ReportDraft(**values)  # type: ignore[arg-type]


def fields_of(error: ValidationFailed) -> list[str]:
    return [str(d["field"]) for d in error.details]


def test_a_complete_report_passes_and_is_normalised():
    report = validate_report(draft(diagnosis="  漂移 ", parts=(PartLine("ir-co2-01", 1), PartLine("IR-CO2-01", 2)),
                                   calibrations=(co2(),), signer_name=" 王老师 ", has_signature=True),
                             visit_day=VISIT_DAY)
    assert report.diagnosis == "漂移" and report.outcome is Outcome.FIXED and report.signer_name == "王老师"
    assert report.parts == (PartLine("IR-CO2-01", 3),)
    assert report.calibrations[0].parameter is Parameter.CO2 and report.calibrations[0].within_tolerance
    assert report.out_of_tolerance == ()


@pytest.mark.parametrize(("changes", "field"), [
    ({"diagnosis": "  "}, "diagnosis"),
    ({"actions": ""}, "actions"),
    ({"outcome": "maybe"}, "outcome"),
    ({"outcome": "follow_up", "reason": "等传感器"}, "follow_up"),
    ({"outcome": "follow_up", "follow_up": "waiting_parts"}, "reason"),
    ({"outcome": "needs_hq"}, "reason"),
    ({"has_signature": True}, "signer_name"),
    ({"diagnosis": "x" * 10_001}, "diagnosis"),
    ({"parts": (PartLine("", 1),)}, "parts.0.part_number"),
    ({"parts": (PartLine("A-1", 1), PartLine("B-2", 0))}, "parts.1.quantity"),
])
def test_report_rules_name_the_field(changes, field):
    with pytest.raises(ValidationFailed) as caught:
        validate_report(draft(**changes), visit_day=VISIT_DAY)
    assert fields_of(caught.value) == [field]
    assert caught.value.message.startswith(field)


def test_follow_up_and_hq_outcomes_carry_their_reason():
    follow = validate_report(draft(outcome="follow_up", follow_up="waiting_parts", reason="传感器缺货"),
                             visit_day=VISIT_DAY)
    assert follow.follow_up is FollowUp.WAITING_PARTS and follow.reason == "传感器缺货"
    again = validate_report(draft(outcome="follow_up", follow_up="awaiting_dispatch", reason="需两人搬运"),
                            visit_day=VISIT_DAY)
    assert again.follow_up is FollowUp.REDISPATCH
    hq = validate_report(draft(outcome="needs_hq", reason="主板故障,需总部分析"), visit_day=VISIT_DAY)
    assert hq.outcome is Outcome.NEEDS_HQ and hq.follow_up is None


@pytest.mark.parametrize(("parameter", "value", "ok"), [
    ("temperature", 20.0, True), ("temperature", 60.0, True), ("temperature", 19.9, False), ("temperature", 85, False),
    ("co2", 0.0, True), ("co2", 20.0, True), ("co2", 20.5, False), ("co2", -0.1, False),
    ("o2", 1.0, True), ("o2", 21.0, True), ("o2", 0.5, False), ("o2", 25, False),
    ("humidity", 0.0, True), ("humidity", 100.0, True), ("humidity", 101, False),
])
def test_plausible_ranges_per_parameter(parameter, value, ok):
    entry = co2(parameter=parameter, as_found=value, as_left=value, setpoint=value)
    if ok:
        assert validate_report(draft(calibrations=(entry,)), visit_day=VISIT_DAY).calibrations
        return
    with pytest.raises(ValidationFailed) as caught:
        validate_report(draft(calibrations=(entry,)), visit_day=VISIT_DAY)
    assert fields_of(caught.value) == ["calibrations.0.as_found", "calibrations.0.as_left", "calibrations.0.setpoint"]


def test_missing_or_non_numeric_values_and_unknown_parameter():
    with pytest.raises(ValidationFailed) as caught:
        validate_report(draft(calibrations=(co2(as_found=None, as_left=float("nan")), co2(parameter="ph"))),
                        visit_day=VISIT_DAY)
    assert fields_of(caught.value) == ["calibrations.0.as_found", "calibrations.0.as_left",
                                       "calibrations.1.parameter"]


@pytest.mark.parametrize(("parameter", "setpoint", "as_left", "within"), [
    ("temperature", 37.0, 37.3, True), ("temperature", 37.0, 36.7, True), ("temperature", 37.0, 37.31, False),
    ("co2", 5.0, 5.3, True), ("co2", 5.0, 4.6, False),
    ("o2", 5.0, 5.5, True), ("o2", 5.0, 5.6, False),
])
def test_as_left_tolerance(parameter, setpoint, as_left, within):
    entry = co2(parameter=parameter, as_found=setpoint, setpoint=setpoint, as_left=as_left)
    if within:
        report = validate_report(draft(calibrations=(entry,)), visit_day=VISIT_DAY)
        assert report.calibrations[0].within_tolerance
        return
    with pytest.raises(ValidationFailed) as caught:
        validate_report(draft(calibrations=(entry,)), visit_day=VISIT_DAY)
    assert fields_of(caught.value) == ["calibrations.0.as_left"]
    assert "tolerance" in caught.value.message and "允差" in caught.value.zh
    # with a note, or with another outcome, the record stands and says it is out of tolerance
    noted = validate_report(draft(calibrations=(entry,), note="客户同意暂用,传感器到货后复校"), visit_day=VISIT_DAY)
    assert noted.out_of_tolerance == noted.calibrations
    follow = validate_report(draft(calibrations=(entry,), outcome="follow_up", follow_up="waiting_parts",
                                   reason="等传感器"), visit_day=VISIT_DAY)
    assert not follow.calibrations[0].within_tolerance


def test_tolerance_is_configurable():
    tight = CalibrationRules().with_tolerance(Parameter.TEMPERATURE, 0.1)
    entry = co2(parameter="temperature", as_found=37.5, setpoint=37.0, as_left=37.2)
    assert validate_report(draft(calibrations=(entry,)), visit_day=VISIT_DAY).calibrations
    with pytest.raises(ValidationFailed):
        validate_report(draft(calibrations=(entry,)), visit_day=VISIT_DAY, rules=tight)
    with pytest.raises(ValueError):
        CalibrationRules().with_tolerance(Parameter.CO2, 0)
    assert CalibrationRules().within_tolerance("co2", 5.3, 5.0) and not tight.within_tolerance("temperature", 37.2, 37)
    assert not CalibrationRules().within_tolerance("ph", 7.0, 7.0)


@pytest.mark.parametrize(("certificate", "ok"), [
    (VISIT_DAY, True), (date(2025, 11, 27), True), (date(2025, 11, 26), False), (date(2026, 11, 28), False),
    (None, False),
])
def test_reference_certificate_must_be_valid_on_the_visit_day(certificate, ok):
    entry = co2(reference_certificate_date=certificate)
    if ok:
        assert validate_report(draft(calibrations=(entry,)), visit_day=VISIT_DAY).calibrations
        return
    with pytest.raises(ValidationFailed) as caught:
        validate_report(draft(calibrations=(entry,)), visit_day=VISIT_DAY)
    assert fields_of(caught.value) == ["calibrations.0.reference_certificate_date"]


def test_reference_instrument_is_required():
    with pytest.raises(ValidationFailed) as caught:
        validate_report(draft(calibrations=(co2(reference_instrument="  "),)), visit_day=VISIT_DAY)
    assert fields_of(caught.value) == ["calibrations.0.reference_instrument"]


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValidationFailed) as caught:
        validate_report(draft(diagnosis="", actions="", calibrations=(co2(as_left=9.0),)), visit_day=VISIT_DAY)
    assert fields_of(caught.value) == ["diagnosis", "actions", "calibrations.0.as_left"]
    assert "and 2 more" in caught.value.message


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 11, 27), 12, date(2025, 11, 27)), (date(2026, 3, 31), 1, date(2026, 2, 28)),
    (date(2028, 2, 29), 12, date(2027, 2, 28)), (date(2026, 1, 15), 2, date(2025, 11, 15)),
])
def test_months_before(day, months, expected):
    assert months_before(day, months) == expected


def test_signature_must_be_a_real_png_of_sane_size():
    image = png()
    assert check_signature(image) == image
    assert decode_signature("data:image/png;base64," + base64.b64encode(image).decode()) == image
    assert decode_signature(base64.b64encode(image).decode()) == image
    assert decode_signature("  ") is None
    bad = [b"", b"\xff\xd8\xff\xe0" + b"0" * 100, image[:-12], png(0, 2), b"x" * (512 * 1024 + 1),
           image[:8] + b"\x00\x00\x00\x0dIHDX" + image[16:]]
    for data in bad:
        with pytest.raises(ValidationFailed) as caught:
            check_signature(data)
        assert fields_of(caught.value) == ["signature"]
    for text in ("data:image/jpeg;base64,/9j/", "not base64 at all!", base64.b64encode(b"GIF89a....").decode()):
        with pytest.raises(ValidationFailed):
            decode_signature(text)


T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def visit(visit_id: int, *, device: int = 1, ticket: int | None = 10, category: str | None = "co2_sensor",
          days: float = 0, outcome: Outcome | None = Outcome.FIXED) -> VisitFact:
    return VisitFact(visit_id, device, ticket, category, T0 + timedelta(days=days), outcome)


def test_second_visit_for_the_same_ticket_is_a_repeat():
    repeats = find_repeats([visit(2, days=3), visit(1, outcome=Outcome.FOLLOW_UP)])
    assert set(repeats) == {2} and repeats[2].repeats_visit_id == 1 and repeats[2].same_ticket
    assert "同一工单" in repeats[2].reason() and "same ticket" in repeats[2].reason("en")


@pytest.mark.parametrize(("days", "category", "device", "repeat"), [
    (30, "co2_sensor", 1, True), (30.01, "co2_sensor", 1, False), (5, "temperature_control", 1, False),
    (5, "co2_sensor", 2, False), (5, None, 1, False),
])
def test_same_category_on_the_same_device_within_30_days_is_a_repeat(days, category, device, repeat):
    earlier = visit(1, ticket=10, category="co2_sensor")
    later = visit(2, ticket=11, category=category, device=device, days=days)
    repeats = find_repeats([earlier, later])
    assert (2 in repeats) is repeat
    if repeat:
        assert not repeats[2].same_ticket and "30" in repeats[2].reason("en")


def test_first_time_fix_rate_from_the_visit_list():
    visits = [
        visit(1, ticket=10, device=1),                                            # fixed once: counts as FTF
        visit(2, ticket=20, device=2, outcome=Outcome.FOLLOW_UP),                 # came back ...
        visit(3, ticket=20, device=2, days=4),                                    # ... so fault 20 is not FTF
        visit(4, ticket=30, device=3, category="door", outcome=Outcome.FIXED),    # fixed, but ...
        visit(5, ticket=31, device=3, category="door", days=10),                  # ... same fault again
        visit(6, ticket=40, device=4, outcome=Outcome.NEEDS_HQ),                  # not fixed on site
        visit(7, ticket=50, device=5, outcome=None),                              # still on site: not counted
    ]
    result = first_time_fix(visits)
    assert result.faults == 4 and result.fixed_first_time == 1 and result.rate == 0.25
    assert [r.visit_id for r in result.repeats] == [3, 5]
    assert first_time_fix([]).rate is None
