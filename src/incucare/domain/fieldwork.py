"""Field work rules (现场服务): when a work report is complete and credible, and when a visit is a repeat.

Pure: no I/O, no framework; the visit date is passed in. ``services/fieldwork.py`` loads and stores.

Why these rules:

- **A report must say what was wrong and what was done.** Diagnosis and actions are the two lines the
  next engineer, HQ and an auditor read first; an empty one makes the visit worthless afterwards.
- **Calibration records are evidence for GMP and IVF customers**, so a number that cannot be true
  (an incubator at 85 °C, 30 % CO2) is a typo to fix on the spot, not a record. The as-left value must be
  within tolerance of the setpoint; if it is not, the job is not "fixed" unless the engineer writes why
  (e.g. the customer accepts ±0.4 °C until the sensor arrives). Every value is traceable to a reference
  instrument whose certificate was valid on the day: not dated in the future, not older than 12 months.
- **A second visit for the same fault counts against first-time fix**: same device, and either the same
  ticket or the same fault category within 30 days of the earlier visit. The rule sees only the visit
  list, so the KPI, the report page and the tests all decide it the same way.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType

from incucare.domain.errors import FieldError, ValidationFailed
from incucare.domain.labels import LabelledEnum
from incucare.domain.stock import MAX_QUANTITY

MAX_TEXT = 10_000
"""Longest diagnosis or actions text (a long report is fine; a pasted log file is not)."""
MAX_SHORT = 2_000
"""Longest reason or note."""
MAX_PART_LINES = 50
MAX_CALIBRATIONS = 20
MAX_SIGNER = 128
MAX_INSTRUMENT = 128
SIGNATURE_MAX_BYTES = 512 * 1024
"""A canvas signature is a few KB; half a megabyte is far beyond any honest one."""
SIGNATURE_MAX_SIDE = 4096
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPEAT_WINDOW = timedelta(days=30)
"""A visit for the same fault category on the same device within this window is a repeat visit."""


class Outcome(LabelledEnum):
    """How the visit ended; it decides the ticket's next status."""

    FIXED = ("fixed", "已修复", "Fixed")
    FOLLOW_UP = ("follow_up", "需后续跟进", "Needs follow-up")
    NEEDS_HQ = ("needs_hq", "需总部支持", "Needs HQ")


class FollowUp(LabelledEnum):
    """What a follow-up waits for: a part (the same engineer comes back) or another dispatch."""

    WAITING_PARTS = ("waiting_parts", "等待备件后再上门", "Wait for parts, then come back")
    REDISPATCH = ("awaiting_dispatch", "需重新派工", "Dispatch again")


class Parameter(LabelledEnum):
    """What was calibrated."""

    TEMPERATURE = ("temperature", "温度", "Temperature")
    CO2 = ("co2", "CO2 浓度", "CO2")
    O2 = ("o2", "O2 浓度", "O2")
    HUMIDITY = ("humidity", "相对湿度", "Humidity")


@dataclass(frozen=True)
class Limits:
    """The plausible range of one parameter and how close as-left must be to the setpoint."""

    low: float
    high: float
    tolerance: float
    unit: str


DEFAULT_LIMITS: Mapping[Parameter, Limits] = MappingProxyType({
    Parameter.TEMPERATURE: Limits(20.0, 60.0, 0.3, "°C"),
    Parameter.CO2: Limits(0.0, 20.0, 0.3, "%"),
    Parameter.O2: Limits(1.0, 21.0, 0.5, "%"),
    Parameter.HUMIDITY: Limits(0.0, 100.0, 5.0, "%RH"),
})
"""Plausible ranges and as-left tolerances (humidity is not actively controlled in most models: ±5 %RH)."""


@dataclass(frozen=True)
class CalibrationRules:
    """The limits a site works to; a customer with tighter GMP tolerances passes its own."""

    limits: Mapping[Parameter, Limits] = field(default_factory=lambda: DEFAULT_LIMITS)
    certificate_months: int = 12

    def within_tolerance(self, parameter: str, as_left: float, setpoint: float) -> bool:
        """Whether a stored as-left value is within tolerance (an unknown parameter code never is)."""
        limits = self.limits.get(Parameter(parameter)) if parameter in Parameter._value2member_map_ else None
        return limits is not None and abs(as_left - setpoint) <= limits.tolerance + 1e-9

    def with_tolerance(self, parameter: Parameter, tolerance: float) -> CalibrationRules:
        """The same rules with another as-left tolerance for one parameter."""
        if not tolerance > 0:
            raise ValueError("a tolerance must be positive")
        limits = dict(self.limits)
        old = limits[parameter]
        limits[parameter] = Limits(old.low, old.high, tolerance, old.unit)
        return CalibrationRules(MappingProxyType(limits), self.certificate_months)


@dataclass(frozen=True)
class CalibrationEntry:
    """One calibration row as the engineer typed it (values may be missing: that is an error to name)."""

    parameter: str
    as_found: float | None
    as_left: float | None
    setpoint: float | None
    reference_instrument: str
    reference_certificate_date: date | None


@dataclass(frozen=True)
class PartLine:
    """A part taken from the van and fitted."""

    part_number: str
    quantity: int


@dataclass(frozen=True)
class ReportDraft:
    """The work report as submitted, before any rule is applied."""

    diagnosis: str
    actions: str
    outcome: str
    follow_up: str = ""
    reason: str = ""
    note: str = ""
    parts: tuple[PartLine, ...] = ()
    calibrations: tuple[CalibrationEntry, ...] = ()
    signer_name: str = ""
    has_signature: bool = False


@dataclass(frozen=True)
class CheckedCalibration:
    """A calibration row that passed the rules, with how far as-left is from the setpoint."""

    parameter: Parameter
    as_found: float
    as_left: float
    setpoint: float
    reference_instrument: str
    reference_certificate_date: date
    tolerance: float

    @property
    def deviation(self) -> float:
        """As-left minus setpoint."""
        return self.as_left - self.setpoint

    @property
    def within_tolerance(self) -> bool:
        """Whether as-left is within the tolerance of the setpoint (a rounding hair is allowed)."""
        return abs(self.deviation) <= self.tolerance + 1e-9


@dataclass(frozen=True)
class CheckedReport:
    """A work report that may be stored: texts trimmed, codes parsed, part lines merged."""

    diagnosis: str
    actions: str
    outcome: Outcome
    follow_up: FollowUp | None
    reason: str
    note: str
    parts: tuple[PartLine, ...]
    calibrations: tuple[CheckedCalibration, ...]
    signer_name: str

    @property
    def out_of_tolerance(self) -> tuple[CheckedCalibration, ...]:
        """Rows whose as-left is outside tolerance (allowed only with a note, or when not "fixed")."""
        return tuple(c for c in self.calibrations if not c.within_tolerance)


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (the 31st becomes the month's last day)."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    raise ValueError("unreachable: every month has 28 days")


class _Problems:
    """Collects every problem of a report, so the engineer fixes them all in one go."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, name: str, en: str, zh: str) -> None:
        self.items.append(FieldError(name, en, extra={"message_zh": zh}))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        more = len(self.items) - 1
        en = f"{first.field}: {first.message}" + (f" (and {more} more)" if more else "")
        zh = f"{first.field}: {first.extra['message_zh']}" + (f"(另有 {more} 处问题)" if more else "")
        raise ValidationFailed(en, zh=zh, details=[p.as_dict() for p in self.items])


def _text(problems: _Problems, name: str, value: str, *, required: bool, limit: int, label_zh: str) -> str:
    text = value.strip()
    if required and not text:
        problems.add(name, "required", f"请填写{label_zh}")
    elif len(text) > limit:
        problems.add(name, f"longer than {limit} characters", f"{label_zh}不能超过 {limit} 个字符")
    return text


def _parts(problems: _Problems, lines: tuple[PartLine, ...]) -> tuple[PartLine, ...]:
    if len(lines) > MAX_PART_LINES:
        problems.add("parts", f"at most {MAX_PART_LINES} part lines", f"备件最多 {MAX_PART_LINES} 行")
        return ()
    merged: dict[str, int] = {}
    for index, line in enumerate(lines):
        number = line.part_number.strip().upper()
        if not number:
            problems.add(f"parts.{index}.part_number", "required", "请填写备件号")
            continue
        quantity = line.quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            problems.add(f"parts.{index}.quantity", f"must be a whole number from 1 to {MAX_QUANTITY}",
                         f"数量必须是 1 到 {MAX_QUANTITY} 之间的整数")
            continue
        merged[number] = merged.get(number, 0) + quantity
    return tuple(PartLine(n, q) for n, q in merged.items())


def _number(problems: _Problems, name: str, value: float | None, limits: Limits, label_zh: str) -> float | None:
    if value is None:
        problems.add(name, "required", f"请填写{label_zh}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.add(name, "not a number", f"{label_zh}不是有效数字")
        return None
    if not limits.low <= value <= limits.high:
        problems.add(name, f"{value:g} is outside the plausible range {limits.low:g}–{limits.high:g} {limits.unit}",
                     f"{label_zh} {value:g} 超出合理范围 {limits.low:g}–{limits.high:g} {limits.unit}")
        return None
    return float(value)


def _calibration(problems: _Problems, index: int, entry: CalibrationEntry, *, visit_day: date,
                 rules: CalibrationRules) -> CheckedCalibration | None:
    prefix = f"calibrations.{index}"
    try:
        parameter = Parameter(entry.parameter.strip().lower())
    except ValueError:
        allowed = ", ".join(p.value for p in Parameter)
        problems.add(f"{prefix}.parameter", f"must be one of: {allowed}", f"校准参数必须是:{allowed}")
        return None
    limits = rules.limits[parameter]
    as_found = _number(problems, f"{prefix}.as_found", entry.as_found, limits, "校准前读数")
    as_left = _number(problems, f"{prefix}.as_left", entry.as_left, limits, "校准后读数")
    setpoint = _number(problems, f"{prefix}.setpoint", entry.setpoint, limits, "设定值")
    instrument = entry.reference_instrument.strip()
    if not instrument:
        problems.add(f"{prefix}.reference_instrument", "the reference instrument's ID is required",
                     "请填写标准器编号")
    elif len(instrument) > MAX_INSTRUMENT:
        problems.add(f"{prefix}.reference_instrument", f"longer than {MAX_INSTRUMENT} characters",
                     f"标准器编号不能超过 {MAX_INSTRUMENT} 个字符")
    certificate = entry.reference_certificate_date
    oldest = months_before(visit_day, rules.certificate_months)
    if certificate is None:
        problems.add(f"{prefix}.reference_certificate_date", "the reference's certificate date is required",
                     "请填写标准器的校准证书日期")
    elif certificate > visit_day:
        problems.add(f"{prefix}.reference_certificate_date",
                     f"certificate dated {certificate.isoformat()} is after the visit ({visit_day.isoformat()})",
                     f"证书日期 {certificate.isoformat()} 晚于服务日期 {visit_day.isoformat()}")
    elif certificate < oldest:
        problems.add(f"{prefix}.reference_certificate_date",
                     f"certificate dated {certificate.isoformat()} is older than {rules.certificate_months} months "
                     f"at the visit: the reference instrument is out of calibration",
                     f"证书日期 {certificate.isoformat()} 距服务日期已超过 {rules.certificate_months} 个月,"
                     f"标准器已过校准有效期")
    if as_found is None or as_left is None or setpoint is None or not instrument or certificate is None:
        return None
    if certificate > visit_day or certificate < oldest or len(instrument) > MAX_INSTRUMENT:
        return None
    return CheckedCalibration(parameter, as_found, as_left, setpoint, instrument, certificate, limits.tolerance)


def validate_report(draft: ReportDraft, *, visit_day: date,
                    rules: CalibrationRules | None = None) -> CheckedReport:
    """Apply every rule to a submitted report; raise one ValidationFailed naming each bad field.

    ``visit_day`` is the local date of the visit (the certificate must be valid on it). Field names in
    the error details follow the API's JSON (``calibrations.0.as_left``).
    """
    rules = rules or CalibrationRules()
    problems = _Problems()
    diagnosis = _text(problems, "diagnosis", draft.diagnosis, required=True, limit=MAX_TEXT, label_zh="故障诊断")
    actions = _text(problems, "actions", draft.actions, required=True, limit=MAX_TEXT, label_zh="处理措施")
    outcome: Outcome | None = None
    try:
        outcome = Outcome(draft.outcome.strip())
    except ValueError:
        problems.add("outcome", "must be one of: fixed, follow_up, needs_hq",
                     "处理结果必须是:已修复、需后续跟进、需总部支持")
    follow_up: FollowUp | None = None
    if outcome is Outcome.FOLLOW_UP:
        try:
            follow_up = FollowUp(draft.follow_up.strip())
        except ValueError:
            problems.add("follow_up", "say what the follow-up waits for: waiting_parts or awaiting_dispatch",
                         "请选择后续方式:等待备件或重新派工")
    reason = _text(problems, "reason", draft.reason, required=outcome in (Outcome.FOLLOW_UP, Outcome.NEEDS_HQ),
                   limit=MAX_SHORT, label_zh="后续跟进或升级总部的原因")
    note = _text(problems, "note", draft.note, required=False, limit=MAX_SHORT, label_zh="说明")
    signer = _text(problems, "signer_name", draft.signer_name, required=draft.has_signature, limit=MAX_SIGNER,
                   label_zh="签字人姓名")
    parts = _parts(problems, draft.parts)
    checked: list[CheckedCalibration] = []
    if len(draft.calibrations) > MAX_CALIBRATIONS:
        problems.add("calibrations", f"at most {MAX_CALIBRATIONS} calibration rows",
                     f"校准记录最多 {MAX_CALIBRATIONS} 行")
    else:
        for index, entry in enumerate(draft.calibrations):
            row = _calibration(problems, index, entry, visit_day=visit_day, rules=rules)
            if row is None:
                continue
            checked.append(row)
            if not row.within_tolerance and outcome is Outcome.FIXED and not note:
                problems.add(
                    f"calibrations.{index}.as_left",
                    f"as left {row.as_left:g} is {abs(row.deviation):.2g} from the setpoint {row.setpoint:g} "
                    f"(tolerance ±{row.tolerance:g}): add a note or choose another outcome",
                    f"校准后读数 {row.as_left:g} 偏离设定值 {row.setpoint:g} {abs(row.deviation):.2g}"
                    f"(允差 ±{row.tolerance:g}):请填写说明或选择其他处理结果")
    problems.raise_if_any()
    assert outcome is not None
    return CheckedReport(diagnosis=diagnosis, actions=actions, outcome=outcome, follow_up=follow_up,
                         reason=reason, note=note, parts=parts, calibrations=tuple(checked), signer_name=signer)


def _signature_error(en: str, zh: str) -> ValidationFailed:
    return ValidationFailed(f"signature: {en}", zh=f"签字:{zh}",
                            details=[{"field": "signature", "message": en, "message_zh": zh}])


def decode_signature(text: str) -> bytes | None:
    """The PNG bytes of a canvas signature sent as base64 (a ``data:image/png;base64,`` URL is accepted).

    An empty value means "not signed" (None); anything else must be a valid PNG (see ``check_signature``).
    """
    raw = text.strip()
    if not raw:
        return None
    if raw.startswith("data:"):
        head, _, raw = raw.partition(",")
        if head.strip().lower() != "data:image/png;base64":
            raise _signature_error("must be a PNG image (data:image/png;base64,...)", "必须是 PNG 图片")
    if len(raw) > SIGNATURE_MAX_BYTES * 4 // 3 + 8:
        raise _signature_error(f"larger than {SIGNATURE_MAX_BYTES // 1024} KB",
                               f"大小超过 {SIGNATURE_MAX_BYTES // 1024} KB")
    try:
        data = base64.b64decode("".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _signature_error("not valid base64", "不是有效的 base64 编码") from None
    return check_signature(data)


def check_signature(data: bytes) -> bytes:
    """Accept only a real, reasonably sized PNG: magic bytes, an IHDR with sane dimensions, an IEND at the end.

    The browser's canvas produces exactly this; anything else (a JPEG, a script, a truncated upload) is
    refused rather than stored as the customer's signature.
    """
    if not data:
        raise _signature_error("empty", "为空")
    if len(data) > SIGNATURE_MAX_BYTES:
        raise _signature_error(f"larger than {SIGNATURE_MAX_BYTES // 1024} KB",
                               f"大小超过 {SIGNATURE_MAX_BYTES // 1024} KB")
    if not data.startswith(PNG_MAGIC) or len(data) < 8 + 25 + 12:
        raise _signature_error("not a PNG image", "不是 PNG 图片")
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise _signature_error("not a PNG image (no IHDR header)", "不是有效的 PNG 图片(缺少 IHDR)")
    width, height = struct.unpack(">II", data[16:24])
    if not (0 < width <= SIGNATURE_MAX_SIDE and 0 < height <= SIGNATURE_MAX_SIDE):
        raise _signature_error(f"image size {width}×{height} is not a signature",
                               f"图片尺寸 {width}×{height} 不像签字")
    if data[-12:-8] != b"\x00\x00\x00\x00" or data[-8:-4] != b"IEND":
        raise _signature_error("the PNG is truncated (no IEND)", "PNG 图片不完整(缺少 IEND)")
    return data


# ---------------------------------------------------------------- first-time fix


@dataclass(frozen=True)
class VisitFact:
    """What the first-time-fix rule needs to know about one visit."""

    visit_id: int
    device_id: int
    ticket_id: int | None
    category: str | None
    at: datetime
    outcome: Outcome | None = None


@dataclass(frozen=True)
class Repeat:
    """A visit that came back for a fault already visited: which earlier visit, and by which rule."""

    visit_id: int
    repeats_visit_id: int
    same_ticket: bool

    def reason(self, lang: str = "zh") -> str:
        """Why it is a repeat, in words."""
        if self.same_ticket:
            return "同一工单的再次上门" if lang != "en" else "another visit for the same ticket"
        days = REPEAT_WINDOW.days
        return (f"同一设备同类故障 {days} 天内再次上门" if lang != "en"
                else f"same device and fault category within {days} days")


def _matches(later: VisitFact, earlier: VisitFact, window: timedelta) -> Repeat | None:
    if later.device_id != earlier.device_id:
        return None
    if later.ticket_id is not None and later.ticket_id == earlier.ticket_id:
        return Repeat(later.visit_id, earlier.visit_id, same_ticket=True)
    if later.category and later.category == earlier.category and later.at - earlier.at <= window:
        return Repeat(later.visit_id, earlier.visit_id, same_ticket=False)
    return None


def find_repeats(visits: Iterable[VisitFact], window: timedelta = REPEAT_WINDOW) -> dict[int, Repeat]:
    """Every visit that is a second (or later) visit for the same fault, keyed by visit id.

    Same fault = same device and either the same ticket, or the same fault category within ``window`` of
    the earlier visit. Each repeat points at the most recent earlier visit it repeats.
    """
    ordered = sorted(visits, key=lambda v: (v.at, v.visit_id))
    repeats: dict[int, Repeat] = {}
    for index, later in enumerate(ordered):
        for earlier in reversed(ordered[:index]):
            found = _matches(later, earlier, window)
            if found is not None:
                repeats[later.visit_id] = found
                break
    return repeats


@dataclass(frozen=True)
class FirstTimeFix:
    """First-time fix over a list of visits: faults whose first visit ended "fixed" with no visit after it."""

    faults: int
    fixed_first_time: int
    repeats: tuple[Repeat, ...]

    @property
    def rate(self) -> float | None:
        """The share of faults fixed at the first visit (None when no fault has an outcome yet)."""
        return self.fixed_first_time / self.faults if self.faults else None


def first_time_fix(visits: Iterable[VisitFact], window: timedelta = REPEAT_WINDOW) -> FirstTimeFix:
    """Decide first-time fix from the visit list alone.

    A fault's first visit counts as fixed first time when its outcome is "fixed" and no repeat visit
    follows; any repeat counts against it. A first visit still without an outcome (the engineer is on site)
    is not counted yet, unless a repeat already shows it was not fixed.
    """
    facts = list(visits)
    repeats = find_repeats(facts, window)
    parent = {r.visit_id: r.repeats_visit_id for r in repeats.values()}

    def root(visit_id: int) -> int:
        while visit_id in parent:
            visit_id = parent[visit_id]
        return visit_id

    repeated_roots = {root(v) for v in parent}
    faults = fixed = 0
    for fact in facts:
        if fact.visit_id in parent:
            continue
        if fact.visit_id in repeated_roots:
            faults += 1
        elif fact.outcome is not None:
            faults += 1
            fixed += fact.outcome is Outcome.FIXED
    ordered = tuple(sorted(repeats.values(), key=lambda r: r.visit_id))
    return FirstTimeFix(faults=faults, fixed_first_time=fixed, repeats=ordered)
