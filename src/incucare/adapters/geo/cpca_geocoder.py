"""Chinese address → province / city / district / adcode / coordinates, offline, with cpca.

cpca ships the national administrative-division table with a centroid per district, so hospitals on
an intranet geocode without any map service. Precision is the district centroid (a few km), which is
what dispatch ETAs need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class GeoPoint:
    """Where an address lies: administrative names, the 6-digit adcode and WGS-84-ish coordinates."""

    province: str
    city: str
    district: str
    adcode: str
    latitude: float | None
    longitude: float | None

    @property
    def resolved(self) -> bool:
        """True when at least the province was recognised."""
        return bool(self.province)


@lru_cache(maxsize=1)
def _cpca() -> Any:
    import cpca  # slow import (pandas): only when an address is actually geocoded

    return cpca


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _coordinates(cpca: Any, adcode: str) -> tuple[float | None, float | None]:
    info = cpca.ad_2_addr_dict.get(adcode.ljust(12, "0"))
    if info is None or not info.latitude or not info.longitude:
        return None, None
    return float(info.latitude), float(info.longitude)


def geocode_many(addresses: list[str]) -> list[GeoPoint]:
    """Geocode a batch of addresses (one cpca call: far faster than one by one)."""
    if not addresses:
        return []
    cpca = _cpca()
    frame = cpca.transform(addresses)
    points: list[GeoPoint] = []
    for row in frame.itertuples(index=False):
        province, city, district, _rest, adcode = (_clean(v) for v in row[:5])
        if city == "市辖区":
            city = province
        lat, lon = _coordinates(cpca, adcode) if adcode else (None, None)
        points.append(GeoPoint(province, city, district, adcode, lat, lon))
    return points


def geocode(address: str) -> GeoPoint:
    """Geocode one address."""
    return geocode_many([address])[0]
