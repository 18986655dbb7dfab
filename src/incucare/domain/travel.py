"""How long an engineer needs to reach a site: one interface, a calibrated default, other providers later.

The default model has no map data (hospitals' intranets have no routing API): great-circle distance times
a road factor at an average road speed, and for long trips the fastest of car, high-speed rail or flight,
each with its fixed overheads and a local leg at the far end, so Urumqi is not "38 h by car".

Calibration (documented, adjust per deployment by passing other constants):

- ``ROAD_FACTOR = 1.35``: Chinese road distance over great-circle distance between cities and hospitals
  (1.2 on motorways between provincial capitals, 1.5+ in mountains; 1.35 is the national middle).
- ``CAR_KMH = 55``: door-to-door average including city traffic at both ends; motorway legs are faster,
  urban legs slower (Wuhan → Huangshi, 83 km great-circle, comes out at 2 h 03 door to door).
- Rail (``RAIL_KMH = 220`` effective on the rail distance, ``RAIL_FACTOR = 1.2``) costs 90 min of
  overheads (to the station, security, boarding) plus a 45 min local leg; it wins from about 250 km.
- Flight (``FLIGHT_KMH = 650`` block speed) costs 150 min of overheads plus a 60 min local leg; it wins
  beyond roughly 1,000 km (Wuhan → Urumqi: 2,765 km great-circle, 7 h 46 door to door by air instead of
  68 h by car; Wuhan → Changsha, 294 km: 3 h 52 by rail instead of 7 h 12 by car).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class GeoPoint:
    """A WGS-84 position (the geocoder's output for sites; service points and check-ins)."""

    latitude: float
    longitude: float


class Mode(Enum):
    """How the engineer travels."""

    CAR = "car"
    RAIL = "rail"
    FLIGHT = "flight"

    @property
    def zh(self) -> str:
        """Chinese label."""
        return {"car": "驾车", "rail": "高铁", "flight": "飞机"}[self.value]


@dataclass(frozen=True)
class TravelEstimate:
    """Minutes door to door, the straight-line distance and the mode that gives them."""

    minutes: int
    km: float
    mode: Mode


class TravelModel(Protocol):
    """Anything that estimates door-to-door travel; a map provider can implement it without touching dispatch."""

    def estimate(self, origin: GeoPoint, destination: GeoPoint) -> TravelEstimate:
        """Door-to-door travel from ``origin`` to ``destination``."""
        ...


def great_circle_km(a: GeoPoint, b: GeoPoint) -> float:
    """Haversine distance in kilometres."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class RoadRailAirModel:
    """The calibrated default: car for short trips, the fastest of car, high-speed rail or flight for long ones."""

    road_factor: float = 1.35
    car_kmh: float = 55.0
    rail_factor: float = 1.2
    rail_kmh: float = 220.0
    rail_overhead_min: float = 90.0
    rail_local_min: float = 45.0
    rail_min_km: float = 150.0
    flight_kmh: float = 650.0
    flight_overhead_min: float = 150.0
    flight_local_min: float = 60.0
    flight_min_km: float = 600.0

    def estimate(self, origin: GeoPoint, destination: GeoPoint) -> TravelEstimate:
        """The fastest available mode for this distance."""
        km = great_circle_km(origin, destination)
        options = [(km * self.road_factor / self.car_kmh * 60, Mode.CAR)]
        if km >= self.rail_min_km:
            options.append((self.rail_overhead_min + km * self.rail_factor / self.rail_kmh * 60
                            + self.rail_local_min, Mode.RAIL))
        if km >= self.flight_min_km:
            options.append((self.flight_overhead_min + km / self.flight_kmh * 60 + self.flight_local_min,
                            Mode.FLIGHT))
        minutes, mode = min(options, key=lambda option: option[0])
        return TravelEstimate(max(1, math.ceil(minutes)), round(km, 1), mode)


def format_minutes(minutes: int, lang: str = "zh") -> str:
    """'3 h 10' / '3小时10分' for reasons a dispatcher reads at a glance."""
    hours, rest = divmod(max(0, minutes), 60)
    if lang == "zh":
        return f"{hours}小时{rest}分" if hours else f"{rest}分钟"
    return f"{hours} h {rest:02d}" if hours else f"{rest} min"


@dataclass(frozen=True)
class PlaneRoadTravel:
    """Road travel on a local plane (kilometres east/north of a region's centre), for the route planner.

    Distances are straight lines times ``road_factor`` (the same calibration as :class:`RoadRailAirModel`'s
    car leg), times are minutes at ``car_kmh``: inside one region's day, engineers drive.
    """

    road_factor: float = 1.35
    car_kmh: float = 55.0

    def distance(self, a: PlanePoint, b: PlanePoint) -> float:
        """Road kilometres."""
        return math.hypot(a.x - b.x, a.y - b.y) * self.road_factor

    def travel_time(self, a: PlanePoint, b: PlanePoint) -> float:
        """Minutes by car."""
        return self.distance(a, b) / self.car_kmh * 60


class PlanePoint(Protocol):
    """Anything with plane coordinates in kilometres (the route planner's ``Point``)."""

    @property
    def x(self) -> float:
        """Kilometres east."""
        ...

    @property
    def y(self) -> float:
        """Kilometres north."""
        ...


def project(point: GeoPoint, centre: GeoPoint) -> tuple[float, float]:
    """Kilometres east and north of ``centre`` (equirectangular; exact enough within a region)."""
    east = (point.longitude - centre.longitude) * 111.320 * math.cos(math.radians(centre.latitude))
    north = (point.latitude - centre.latitude) * 110.574
    return east, north
