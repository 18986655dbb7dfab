"""Import of the installed base (devices with their customers and sites) from CSV or XLSX.

Distributors and hospitals hand over their installed base as spreadsheets, often exported by a
Chinese Excel. The import is all or nothing: the whole file is validated first and every problem
is reported with its spreadsheet row and column, so one corrected upload succeeds; only a file
without a single error is written. Re-importing the same file changes nothing (serials are upserted).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePath
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Customer, Device, DeviceModel, Region, Site
from incucare.adapters.geo.cpca_geocoder import GeoPoint, geocode_many
from incucare.domain.errors import Conflict, FieldError, ValidationFailed
from incucare.domain.model import CustomerKind, DeviceStatus
from incucare.services.audit import record_change, snapshot
from incucare.services.context import Actor
from incucare.services.installed_base import require_manager

MAX_ROWS = 50_000
"""Larger installed bases are imported in several files (keeps one transaction and one report sane)."""

MAX_REPORTED = 1_000
"""Errors (and update previews) kept in a report; the total is still counted."""

_IN_CHUNK = 500
"""Keys per ``IN (...)`` query, well below SQLite's and PostgreSQL's parameter limits."""

_T = TypeVar("_T")


# ---------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    """One importable column: its canonical key, Chinese name, accepted header spellings and limits."""

    key: str
    zh: str
    aliases: tuple[str, ...]
    required: bool = False
    max_len: int = 255

    @property
    def display(self) -> str:
        """How messages name the column: ``serial (序列号)``."""
        return f"{self.key} ({self.zh})"


COLUMNS: tuple[Column, ...] = (
    Column("serial", "序列号", ("serial", "serial_no", "serial_number", "sn", "序列号", "设备序列号",
                                "出厂编号"), required=True, max_len=64),
    Column("brand", "品牌", ("brand", "品牌"), required=True, max_len=64),
    Column("model", "型号", ("model", "型号", "设备型号"), required=True, max_len=64),
    Column("customer_code", "客户编号", ("customer_code", "客户编号", "客户代码"), required=True, max_len=32),
    Column("customer_name", "客户名称", ("customer_name", "customer", "客户名称", "客户")),
    Column("customer_kind", "客户类型", ("customer_kind", "kind", "客户类型")),
    Column("vip", "VIP", ("vip", "是否vip", "重点客户")),
    Column("site_name", "场地名称", ("site_name", "site", "场地名称", "场地", "院区/实验室", "院区", "实验室"),
           required=True),
    Column("site_address", "地址", ("site_address", "address", "地址", "场地地址", "详细地址")),
    Column("install_date", "安装日期", ("install_date", "installed_on", "安装日期")),
    Column("warranty_end", "保修截止", ("warranty_end", "warranty_until", "保修截止", "保修截止日期",
                                        "保修到期", "保修到期日")),
    Column("firmware_version", "固件版本", ("firmware_version", "firmware", "固件版本", "固件"), max_len=32),
    Column("status", "状态", ("status", "状态", "设备状态"), max_len=32),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}

_HEADER_NOISE = re.compile(r"[\s_\-/\\:：*＊]+")
_HEADER_HINT = re.compile(r"[(（【\[].*?[)）】\]]")


def normalise_header(text: str) -> str:
    """Fold a header cell so that "Customer Code", "customer_code" and "客户编号*" all match."""
    folded = _HEADER_HINT.sub("", text).casefold()
    return _HEADER_NOISE.sub("", folded)


_ALIASES = {normalise_header(alias): column for column in COLUMNS for alias in column.aliases}


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class DeviceUpdate:
    """What an import changes on an existing device, as displayable (old, new) text pairs."""

    row: int
    serial: str
    changes: dict[str, tuple[str | None, str | None]]

    def as_dict(self) -> dict[str, object]:
        """JSON-able form for the API and ``--json``."""
        return {"row": self.row, "serial": self.serial,
                "changes": {k: [old, new] for k, (old, new) in self.changes.items()}}


@dataclass
class ImportReport:
    """The outcome of one import: counts when the file is valid, every row error when it is not."""

    filename: str
    dry_run: bool = False
    rows: int = 0
    customers_created: int = 0
    sites_created: int = 0
    devices_created: int = 0
    devices_updated: int = 0
    devices_unchanged: int = 0
    errors: list[FieldError] = field(default_factory=list)
    error_count: int = 0
    updates: list[DeviceUpdate] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file had no error (then, unless a dry run, the caller commits)."""
        return self.error_count == 0

    def add_error(self, row: int | None, column: str, message: str, *, header: str | None = None) -> None:
        """Record one problem; beyond ``MAX_REPORTED`` only the count grows."""
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED:
            extra: dict[str, object] = {"column": header} if header else {}
            self.errors.append(FieldError(field=column, message=message, row=row, extra=extra))

    def error_rows(self) -> int:
        """How many distinct rows have at least one (reported) error."""
        return len({e.row for e in self.errors})

    def summary(self) -> str:
        """One line for people: what was (or, in a dry run, would be) done, or why nothing was."""
        head = _count(self.rows, "row")
        if not self.ok:
            rows = self.error_rows()
            where = f" in {_count(rows, 'row')}" if rows else ""
            return f"{head}: {_count(self.error_count, 'error')}{where}; nothing was imported"
        body = (f"{_count(self.customers_created, 'customer')} created, {_count(self.sites_created, 'site')} "
                f"created, {_count(self.devices_created, 'device')} created, {self.devices_updated:,} updated, "
                f"{self.devices_unchanged:,} unchanged")
        return f"{head}: {body}" + (" (dry run: nothing written)" if self.dry_run else "")

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the API and ``--json``."""
        return {
            "filename": self.filename,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "rows": self.rows,
            "customers_created": self.customers_created,
            "sites_created": self.sites_created,
            "devices_created": self.devices_created,
            "devices_updated": self.devices_updated,
            "devices_unchanged": self.devices_unchanged,
            "error_count": self.error_count,
            "errors": [e.as_dict() for e in self.errors],
            "updates": [u.as_dict() for u in self.updates],
            "summary": self.summary(),
        }


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------- reading the file


@dataclass
class Table:
    """The raw cells of a spreadsheet: the header row and the non-blank data rows, with row numbers."""

    header_row: int
    header: list[str]
    rows: list[tuple[int, list[object]]]
    excel: bool


def _blank(cells: Sequence[object]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _too_many() -> ValidationFailed:
    return ValidationFailed(f"the file has more than {MAX_ROWS:,} data rows; split it into several files")


def _collect(numbered: Iterable[tuple[int, Sequence[object]]], *, excel: bool) -> Table:
    header: list[str] | None = None
    header_row = 0
    rows: list[tuple[int, list[object]]] = []
    for number, cells in numbered:
        if _blank(cells):
            continue
        if header is None:
            header_row, header = number, [_text(c) for c in cells]
            continue
        rows.append((number, list(cells)))
        if len(rows) > MAX_ROWS:
            raise _too_many()
    if header is None:
        raise ValidationFailed("the file is empty: expected a header row and at least one data row")
    if not rows:
        raise ValidationFailed("the file has a header row but no data rows")
    return Table(header_row, header, rows, excel)


def _decode(content: bytes) -> str:
    if content.startswith(codecs.BOM_UTF8):
        encodings: tuple[str, ...] = ("utf-8-sig",)
    elif content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)
    else:
        encodings = ("utf-8", "gb18030")  # Chinese Excel saves "CSV" in the ANSI code page (GBK)
    for encoding in encodings:
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text
    raise ValidationFailed("the CSV file could not be read as text: save it as UTF-8 or GBK "
                           "(Excel: 'CSV UTF-8' or 'CSV')")


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(content: bytes) -> Table:
    if content.startswith(b"PK\x03\x04"):
        raise ValidationFailed("this file is an Excel workbook, not CSV: name it .xlsx or save it as CSV")
    text = _decode(content)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        return _collect(enumerate(reader, start=1), excel=False)
    except csv.Error as exc:
        raise ValidationFailed(f"the CSV file is malformed: {exc}") from exc


def _read_xlsx(content: bytes) -> Table:
    import openpyxl  # imported here: only needed for workbooks

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ValidationFailed("the file is not a valid .xlsx workbook (save it from Excel as "
                               "'Excel Workbook (*.xlsx)' or as CSV)") from exc
    try:
        if not workbook.worksheets:
            raise ValidationFailed("the workbook has no worksheet")
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # some generators write a wrong <dimension>; read every cell instead
        return _collect(enumerate(sheet.iter_rows(values_only=True), start=1), excel=True)
    finally:
        workbook.close()


def read_table(filename: str, content: bytes) -> Table:
    """Parse an uploaded spreadsheet into raw cells; format problems raise ValidationFailed."""
    suffix = PurePath(filename).suffix.lower()
    if not content:
        raise ValidationFailed(f"the file '{filename}' is empty")
    if suffix in (".csv", ".tsv"):
        return _read_csv(content)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(content)
    if suffix == ".xls":
        raise ValidationFailed("old Excel .xls files are not supported: save the sheet as .xlsx or CSV")
    raise ValidationFailed(f"unsupported file type '{suffix or filename}': upload a .csv or .xlsx file")


# ---------------------------------------------------------------- cell values


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        return value.date().isoformat()
    return str(value).strip()


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
                   r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")


def parse_date(value: object, *, excel: bool = False) -> date:
    """A date from an Excel date cell or text as yyyy-mm-dd, yyyy/m/d, yyyy.mm.dd or 2025年3月1日."""
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    elif excel and isinstance(value, int | float) and not isinstance(value, bool):
        from openpyxl.utils.datetime import from_excel

        try:
            day = from_excel(value).date()
        except (ValueError, OverflowError, AttributeError) as exc:
            raise ValueError(f"'{value}' is not a date") from exc
    else:
        text = _text(value)
        match = _DATE.match(text)
        if match is None:
            raise ValueError(f"'{text}' is not a date: use yyyy-mm-dd, e.g. 2025-03-01")
        try:
            day = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError as exc:
            raise ValueError(f"'{text}' is not a valid calendar date") from exc
    if not 1970 <= day.year <= 2100:
        raise ValueError(f"{day.isoformat()} is not a plausible date")
    return day


_YES = {"1", "y", "yes", "true", "t", "vip", "是", "√", "✓", "✔"}
_NO = {"0", "n", "no", "false", "f", "否", "非vip", "×", "✗", "x", "-"}


def parse_yes_no(value: object) -> bool:
    """A VIP flag as written in spreadsheets: 是/否, yes/no, true/false, 1/0, √/×."""
    if isinstance(value, bool):
        return value
    text = _text(value).casefold()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ValueError(f"'{_text(value)}' is not yes/no: use 是 or 否 (yes or no)")


def _choices(enum: type[CustomerKind] | type[DeviceStatus]) -> str:
    return ", ".join(f"{m.value} ({m.zh})" for m in enum)


# ---------------------------------------------------------------- validation


@dataclass
class _Row:
    number: int
    serial: str = ""
    brand: str = ""
    model: str = ""
    customer_code: str = ""
    customer_name: str = ""
    customer_kind: CustomerKind | None = None
    vip: bool | None = None
    site_name: str = ""
    site_address: str = ""
    install_date: date | None = None
    warranty_end: date | None = None
    firmware_version: str | None = None
    status: DeviceStatus | None = None
    bad: set[str] = field(default_factory=set)
    model_id: int | None = None

    @property
    def site_key(self) -> tuple[str, str]:
        return self.customer_code, self.site_name


@dataclass
class _NewCustomer:
    code: str
    name: str = ""
    name_row: int = 0
    kind: CustomerKind | None = None
    kind_row: int = 0
    vip: bool | None = None
    vip_row: int = 0
    row: Customer | None = None


@dataclass
class _NewSite:
    key: tuple[str, str]
    address: str = ""
    address_row: int = 0
    point: GeoPoint | None = None
    row: Site | None = None


@dataclass
class _DeviceCreate:
    row: _Row


@dataclass
class _DeviceChange:
    row: _Row
    device: Device
    changes: dict[str, tuple[Any, Any]]


@dataclass
class _Plan:
    new_customers: dict[str, _NewCustomer] = field(default_factory=dict)
    new_sites: dict[tuple[str, str], _NewSite] = field(default_factory=dict)
    creates: list[_DeviceCreate] = field(default_factory=list)
    changes: list[_DeviceChange] = field(default_factory=list)


class _Importer:
    """One import run: validates everything first, then (if asked and clean) writes in bulk."""

    def __init__(self, session: Session, actor: Actor, now: datetime, table: Table, report: ImportReport):
        self.session = session
        self.actor = actor
        self.now = now
        self.table = table
        self.report = report
        self.headers: dict[str, str] = {}
        self.positions: dict[str, int] = {}
        self.rows: list[_Row] = []
        self.plan = _Plan()
        self.customers: dict[str, Customer] = {}
        self.sites: dict[tuple[str, str], list[Site]] = {}
        self.devices: dict[str, Device] = {}
        self.site_names: dict[int, str] = {}
        self.model_names: dict[int, str] = {}

    # -------------------------------------------------- errors

    def error(self, row: _Row, key: str, message: str) -> None:
        row.bad.add(key)
        self.report.add_error(row.number, key, message, header=self.headers.get(key))

    # -------------------------------------------------- header

    def read_header(self) -> bool:
        unknown: list[str] = []
        duplicated: list[str] = []
        for position, raw in enumerate(self.table.header):
            if not raw:
                continue
            column = _ALIASES.get(normalise_header(raw))
            if column is None:
                unknown.append(raw)
            elif column.key in self.positions:
                duplicated.append(f"'{self.headers[column.key]}' and '{raw}'")
            else:
                self.positions[column.key] = position
                self.headers[column.key] = raw
        line = self.table.header_row
        if unknown:
            known = ", ".join(c.display for c in COLUMNS)
            self.report.add_error(line, "header", f"unknown column{'s' if len(unknown) > 1 else ''} "
                                  f"{', '.join(repr(u) for u in unknown)}; the columns are: {known}")
        if duplicated:
            self.report.add_error(line, "header", f"the same column appears twice: {'; '.join(duplicated)}")
        missing = [c.display for c in COLUMNS if c.required and c.key not in self.positions]
        if missing:
            self.report.add_error(line, "header", f"required column{'s' if len(missing) > 1 else ''} missing: "
                                  f"{', '.join(missing)}")
        unnamed = {i for i, raw in enumerate(self.table.header) if not raw}
        for number, cells in self.table.rows:
            stray = [i for i, c in enumerate(cells) if (i in unnamed or i >= len(self.table.header))
                     and _text(c)]
            if stray:
                self.report.add_error(number, "header", f"row {number} has values in column "
                                      f"{_column_letter(stray[0])}, which has no header")
                break
        return self.report.ok

    # -------------------------------------------------- pass 1: cells

    def parse_rows(self) -> None:
        for number, cells in self.table.rows:
            values = {key: cells[pos] if pos < len(cells) else None for key, pos in self.positions.items()}
            row = _Row(number)
            self.rows.append(row)
            for column in COLUMNS:
                if column.key in self.positions:
                    self._parse_cell(row, column, values[column.key])
        self._duplicate_serials()

    def _parse_cell(self, row: _Row, column: Column, value: object) -> None:
        key = column.key
        text = _text(value)
        if not text:
            if column.required:
                self.error(row, key, f"{column.display} is required")
            return
        if len(text) > column.max_len:
            self.error(row, key, f"{column.display} is longer than {column.max_len} characters")
            return
        try:
            if key in ("install_date", "warranty_end"):
                setattr(row, key, parse_date(value, excel=self.table.excel))
            elif key == "customer_kind":
                row.customer_kind = _parse_enum(CustomerKind, text, "customer kind")
            elif key == "status":
                row.status = _parse_enum(DeviceStatus, text, "status")
            elif key == "vip":
                row.vip = parse_yes_no(value)
            else:
                setattr(row, key, text)
        except ValueError as exc:
            self.error(row, key, str(exc))

    def _duplicate_serials(self) -> None:
        by_serial: dict[str, list[_Row]] = defaultdict(list)
        for row in self.rows:
            if row.serial:
                by_serial[row.serial].append(row)
        for serial, rows in by_serial.items():
            if len(rows) > 1:
                numbers = ", ".join(str(r.number) for r in rows)
                for row in rows:
                    self.error(row, "serial", f"serial '{serial}' appears more than once in the file "
                                              f"(rows {numbers})")

    # -------------------------------------------------- pass 2: against the database

    def load(self) -> None:
        codes = {r.customer_code for r in self.rows if r.customer_code}
        for customer in _chunked_select(self.session, codes, lambda c: select(Customer).where(
                Customer.code.in_(c))):
            self.customers[customer.code] = customer
        by_id = {c.id: c for c in self.customers.values()}
        for site in _chunked_select(self.session, set(by_id), lambda c: select(Site).where(
                Site.customer_id.in_(c))):
            self.sites.setdefault((by_id[site.customer_id].code, site.name.strip()), []).append(site)
        serials = {r.serial for r in self.rows if r.serial}
        for device in _chunked_select(self.session, serials, lambda c: select(Device).where(
                Device.serial.in_(c))):
            self.devices[device.serial] = device
        moved_from = {d.site_id for d in self.devices.values()}
        for site_id, name in _chunked_rows(self.session, moved_from, lambda c: select(Site.id, Site.name).where(
                Site.id.in_(c))):
            self.site_names[site_id] = name

    def check_models(self) -> None:
        models = list(self.session.scalars(select(DeviceModel).order_by(DeviceModel.brand, DeviceModel.model)))
        candidates: dict[tuple[str, str], set[int]] = defaultdict(set)
        for m in models:
            for brand in brand_spellings(m.brand):
                candidates[(brand, _fold(m.model))].add(m.id)
        index = {key: next(iter(ids)) for key, ids in candidates.items() if len(ids) == 1}
        self.model_names = {m.id: f"{m.brand} {m.model}" for m in models}
        known = ", ".join(f"{m.brand} {m.model}" for m in models[:50]) or "none (add models first)"
        if len(models) > 50:
            known += f" and {len(models) - 50} more"
        for row in self.rows:
            if not row.brand or not row.model:
                continue
            row.model_id = index.get((_fold(row.brand), _fold(row.model)))
            if row.model_id is None:
                self.error(row, "model", f"unknown model '{row.brand} {row.model}'; known models: {known}")

    def check_customers(self) -> None:
        for row in self.rows:
            code = row.customer_code
            if not code:
                continue
            existing = self.customers.get(code)
            if existing is not None:
                self._compare_existing_customer(row, existing)
                continue
            new = self.plan.new_customers.get(code)
            if new is None:
                new = self.plan.new_customers[code] = _NewCustomer(code)
            self._merge_new_customer(row, new)
        rows_by_code: dict[str, _Row] = {}
        for row in self.rows:
            rows_by_code.setdefault(row.customer_code, row)
        for new in self.plan.new_customers.values():
            first = rows_by_code[new.code]
            if not new.name and "customer_name" not in first.bad:
                self.error(first, "customer_name", f"customer '{new.code}' is new: customer_name (客户名称) "
                                                   "is required")
            if new.kind is None and "customer_kind" not in first.bad:
                self.error(first, "customer_kind", f"customer '{new.code}' is new: customer_kind (客户类型) "
                                                   f"is required, one of {_choices(CustomerKind)}")

    def _compare_existing_customer(self, row: _Row, customer: Customer) -> None:
        if row.customer_name and row.customer_name != customer.name.strip():
            self.error(row, "customer_name", f"customer '{customer.code}' already exists as "
                       f"'{customer.name}'; use that name or leave the cell empty (rename customers on "
                       "the customer page, not by import)")
        if row.customer_kind is not None and row.customer_kind.value != customer.kind:
            current = CustomerKind(customer.kind)
            self.error(row, "customer_kind", f"customer '{customer.code}' already exists as "
                       f"{current.value} ({current.zh}); use that kind or leave the cell empty")
        if row.vip is not None and row.vip != customer.vip:
            flag = "VIP" if customer.vip else "not VIP"
            self.error(row, "vip", f"customer '{customer.code}' already exists and is {flag}; "
                                   "change the VIP flag on the customer page or leave the cell empty")

    def _merge_new_customer(self, row: _Row, new: _NewCustomer) -> None:
        if row.customer_name:
            if not new.name:
                new.name, new.name_row = row.customer_name, row.number
            elif row.customer_name != new.name:
                self.error(row, "customer_name", f"customer '{new.code}' is named '{new.name}' in row "
                                                 f"{new.name_row}; every row must use the same name")
        if row.customer_kind is not None:
            if new.kind is None:
                new.kind, new.kind_row = row.customer_kind, row.number
            elif row.customer_kind is not new.kind:
                self.error(row, "customer_kind", f"customer '{new.code}' has the kind {new.kind.value} in row "
                                                 f"{new.kind_row}; every row must use the same kind")
        if row.vip is not None:
            if new.vip is None:
                new.vip, new.vip_row = row.vip, row.number
            elif row.vip != new.vip:
                self.error(row, "vip", f"customer '{new.code}' has a different VIP flag in row {new.vip_row}; "
                                       "every row must use the same flag")

    def check_sites(self) -> None:
        first_rows: dict[tuple[str, str], _Row] = {}
        for row in self.rows:
            if not row.customer_code or not row.site_name:
                continue
            existing = self.sites.get(row.site_key)
            if existing:
                if len(existing) > 1:
                    self.error(row, "site_name", f"customer '{row.customer_code}' has {len(existing)} sites "
                                                 f"named '{row.site_name}'; rename them so they can be told apart")
                elif row.site_address and row.site_address != existing[0].address.strip():
                    self.error(row, "site_address", f"site '{row.site_name}' already exists at "
                                                    f"'{existing[0].address}'; use that address or leave the "
                                                    "cell empty")
                continue
            first_rows.setdefault(row.site_key, row)
            new = self.plan.new_sites.get(row.site_key)
            if new is None:
                new = self.plan.new_sites[row.site_key] = _NewSite(row.site_key)
            if row.site_address:
                if not new.address:
                    new.address, new.address_row = row.site_address, row.number
                elif row.site_address != new.address:
                    self.error(row, "site_address", f"site '{row.site_name}' has the address '{new.address}' "
                                                    f"in row {new.address_row}; every row must use the same one")
        for key, new in self.plan.new_sites.items():
            if not new.address and "site_address" not in first_rows[key].bad:
                self.error(first_rows[key], "site_address", f"site '{key[1]}' is new: site_address (地址) is "
                                                            "required")
        self._geocode()

    def _geocode(self) -> None:
        sites = [s for s in self.plan.new_sites.values() if s.address]
        addresses = sorted({s.address for s in sites})
        points = dict(zip(addresses, geocode_many(addresses), strict=True))
        unresolved: set[tuple[str, str]] = set()
        for site in sites:
            site.point = points[site.address]
            if not site.point.resolved:
                unresolved.add(site.key)
        for row in self.rows:
            if row.site_key in unresolved and row.site_address and "site_address" not in row.bad:
                self.error(row, "site_address", f"address '{row.site_address}' could not be located; "
                                                "write it with the province or city, e.g. 湖北省武汉市武昌区...")

    def check_devices(self) -> None:
        for row in self.rows:
            if not row.serial:
                continue
            device = self.devices.get(row.serial)
            install = row.install_date or (device.install_date if device else None)
            warranty = row.warranty_end or (device.warranty_end if device else None)
            if install and warranty and warranty < install and not {"install_date", "warranty_end"} & row.bad:
                self.error(row, "warranty_end", f"warranty_end {warranty.isoformat()} is before install_date "
                                                f"{install.isoformat()}")
            if row.bad:
                continue
            if device is None:
                self.plan.creates.append(_DeviceCreate(row))
            else:
                self._diff(row, device)

    def _diff(self, row: _Row, device: Device) -> None:
        changes: dict[str, tuple[Any, Any]] = {}
        if row.model_id != device.model_id:
            changes["model_id"] = (device.model_id, row.model_id)
        existing = self.sites.get(row.site_key)
        site_id = existing[0].id if existing else None
        if site_id != device.site_id:
            changes["site_id"] = (device.site_id, site_id)
        for key in ("install_date", "warranty_end", "firmware_version"):
            new = getattr(row, key)
            if new is not None and new != getattr(device, key):
                changes[key] = (getattr(device, key), new)
        if row.status is not None and row.status.value != device.status:
            changes["status"] = (device.status, row.status.value)
        if changes:
            self.plan.changes.append(_DeviceChange(row, device, changes))
        else:
            self.report.devices_unchanged += 1

    # -------------------------------------------------- counts and preview

    def count(self) -> None:
        report, plan = self.report, self.plan
        report.customers_created = len(plan.new_customers)
        report.sites_created = len(plan.new_sites)
        report.devices_created = len(plan.creates)
        report.devices_updated = len(plan.changes)
        for change in plan.changes[:MAX_REPORTED]:
            shown: dict[str, tuple[str | None, str | None]] = {}
            for key, (old, new) in change.changes.items():
                if key == "site_id":
                    shown["site"] = (self.site_names.get(old), change.row.site_name)
                elif key == "model_id":
                    shown["model"] = (self.model_names.get(old), self.model_names.get(new))
                else:
                    shown[key] = (_shown(old), _shown(new))
            report.updates.append(DeviceUpdate(change.row.number, change.row.serial, shown))

    # -------------------------------------------------- writing

    def apply(self) -> None:
        session, plan, now = self.session, self.plan, self.now
        regions = _regions_by_province(session)
        first_region: dict[str, int | None] = {}
        for new_site in plan.new_sites.values():
            assert new_site.point is not None
            first_region.setdefault(new_site.key[0], regions.get(new_site.point.province))
        for new in plan.new_customers.values():
            assert new.kind is not None
            new.row = Customer(code=new.code, name=new.name, kind=new.kind.value, vip=bool(new.vip),
                               region_id=first_region.get(new.code), created_at=now)
            self.customers[new.code] = new.row
        session.add_all([n.row for n in plan.new_customers.values() if n.row is not None])
        session.flush()

        regions_set: dict[int, tuple[Any, Any]] = {}
        for new_site in plan.new_sites.values():
            customer = self.customers[new_site.key[0]]
            assert new_site.point is not None
            point = new_site.point
            new_site.row = Site(
                customer_id=customer.id, name=new_site.key[1], address=new_site.address,
                province=point.province, city=point.city, district=point.district, adcode=point.adcode,
                latitude=point.latitude, longitude=point.longitude, region_id=regions.get(point.province),
            )
            self.sites[new_site.key] = [new_site.row]
            if customer.region_id is None and new_site.row.region_id is not None:
                customer.region_id = new_site.row.region_id
                if customer.code not in plan.new_customers:
                    regions_set[customer.id] = (None, customer.region_id)
        session.add_all([n.row for n in plan.new_sites.values() if n.row is not None])
        session.flush()

        devices: list[Device] = []
        for create in plan.creates:
            row = create.row
            site = self.sites[row.site_key][0]
            assert row.model_id is not None
            devices.append(Device(
                serial=row.serial, model_id=row.model_id, site_id=site.id, customer_id=site.customer_id,
                install_date=row.install_date, warranty_end=row.warranty_end,
                firmware_version=row.firmware_version or "",
                status=(row.status or DeviceStatus.IN_SERVICE).value, created_at=now,
            ))
        session.add_all(devices)
        for change in plan.changes:
            self._apply_change(change)
        session.flush()
        self._audit(devices, regions_set)
        session.flush()

    def _apply_change(self, change: _DeviceChange) -> None:
        device = change.device
        if "site_id" in change.changes:
            site = self.sites[change.row.site_key][0]
            change.changes["site_id"] = (device.site_id, site.id)
            if site.customer_id != device.customer_id:
                change.changes["customer_id"] = (device.customer_id, site.customer_id)
        for key, (_old, new) in change.changes.items():
            setattr(device, key, new)

    def _audit(self, devices: list[Device], regions_set: dict[int, tuple[Any, Any]]) -> None:
        actor, at, session = self.actor, self.now, self.session
        reason = f"import {self.report.filename}"

        def audit(entity: str, entity_id: int, action: str, changes: dict[str, tuple[Any, Any]]) -> None:
            record_change(session, actor, at=at, entity=entity, entity_id=entity_id, action=action,
                          changes=changes, reason=reason)

        for customer in (n.row for n in self.plan.new_customers.values() if n.row is not None):
            audit("customer", customer.id, "create", snapshot(customer, ["code", "name", "kind", "vip",
                                                                         "region_id"]))
        for customer_id, pair in regions_set.items():
            audit("customer", customer_id, "update", {"region_id": pair})
        for site in (n.row for n in self.plan.new_sites.values() if n.row is not None):
            audit("site", site.id, "create", snapshot(site, ["customer_id", "name", "address", "province",
                                                             "city", "district"]))
        for device in devices:
            audit("device", device.id, "create", snapshot(device, [
                "serial", "model_id", "site_id", "customer_id", "install_date", "warranty_end",
                "firmware_version", "status"]))
        for change in self.plan.changes:
            audit("device", change.device.id, "update", change.changes)


def _parse_enum(enum: type[CustomerKind] | type[DeviceStatus], text: str, what: str) -> Any:
    """The enum's own parse, plus the short forms people type: 生殖中心 for 生殖中心(IVF), 高校 for 高校/科研院所."""
    try:
        return enum.parse(text)
    except ValueError:
        pass
    wanted = normalise_header(text)
    for member in enum:
        short = normalise_header(member.zh)
        parts = {normalise_header(p) for p in _HEADER_HINT.sub("", member.zh).split("/")}
        if wanted == short or wanted in parts:
            return member
    raise ValueError(f"unknown {what} '{text}'; use one of: {_choices(enum)}")


def brand_spellings(brand: str) -> set[str]:
    """A catalogue brand such as "Heal Force 力康" is written "Heal Force", "力康" or both in spreadsheets."""
    words = brand.split()
    latin = " ".join(w for w in words if w.isascii())
    native = " ".join(w for w in words if not w.isascii())
    return {_fold(v) for v in (brand, latin, native) if v}


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _shown(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _chunks(keys: Iterable[_T]) -> Iterator[list[_T]]:
    ordered = list(keys)
    for start in range(0, len(ordered), _IN_CHUNK):
        yield ordered[start:start + _IN_CHUNK]


def _chunked_select(session: Session, keys: Iterable[_T],
                    query: Callable[[list[_T]], Any]) -> Iterator[Any]:
    for chunk in _chunks(keys):
        yield from session.scalars(query(chunk))


def _chunked_rows(session: Session, keys: Iterable[_T],
                  query: Callable[[list[_T]], Any]) -> Iterator[Any]:
    for chunk in _chunks(keys):
        yield from session.execute(query(chunk))


def _regions_by_province(session: Session) -> dict[str, int]:
    mapping: dict[str, int] = {}
    for region in session.scalars(select(Region).order_by(Region.code)):
        for province in region.provinces or []:
            mapping.setdefault(province, region.id)
    return mapping


# ---------------------------------------------------------------- the use case


def import_devices(session: Session, actor: Actor, *, now: datetime, filename: str, content: bytes,
                   dry_run: bool = False) -> ImportReport:
    """Validate a whole installed-base spreadsheet, then upsert its customers, sites and devices.

    Nothing is written unless every row is valid, and nothing at all in a dry run, so a rejected
    file leaves no pending change in ``session``. The caller commits when ``report.ok`` and not
    ``dry_run``. Unsupported, empty or oversized files raise ValidationFailed; a non-manager
    raises PermissionDenied.
    """
    require_manager(actor)
    table = read_table(filename, content)
    report = ImportReport(filename=filename, dry_run=dry_run, rows=len(table.rows))
    importer = _Importer(session, actor, now, table, report)
    if not importer.read_header():
        return report
    importer.parse_rows()
    importer.load()
    importer.check_models()
    importer.check_customers()
    importer.check_sites()
    importer.check_devices()
    if not report.ok:
        report.errors.sort(key=lambda e: (e.row or 0, _COLUMN_ORDER.get(e.field, -1)))
        return report
    importer.count()
    if not dry_run:
        try:
            importer.apply()
        except IntegrityError as exc:
            raise Conflict("the installed base changed while the file was being imported (another import "
                           "or edit created the same serial or customer code); import the file again") from exc
    return report


_COLUMN_ORDER = {c.key: i for i, c in enumerate(COLUMNS)}
