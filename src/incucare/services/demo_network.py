"""The demo's field network for dispatch: an engineer profile per field engineer (base, tools, position).

Skills follow the fault taxonomy's vocabulary; every field engineer can install, do PM and decontaminate,
and the narrower skills they were given imply their neighbours (whoever repairs electronics also fixes
heaters, whoever does CO2 also does valves and gas lines, tri-gas means O2 too). Tools are what a van
really carries: a CO2 analyser and a certified thermometer for almost everyone, the calibration gas and
the O2 analyser for some. One engineer per service point is on call out of hours.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from sqlalchemy.orm import Session

from incucare.adapters.db.tables import EngineerProfile, ServicePoint, User

BASIC = ("installation", "pm", "decontamination")
IMPLIED = {"electronics": ("heating",), "co2": ("valves", "gas"), "tri_gas": ("o2",)}


def add_profiles(session: Session, engineers: Iterable[User], points: dict[int, ServicePoint],
                 rng: random.Random) -> int:
    """One profile per engineer with a service point; returns how many were added."""
    on_call_taken: set[int] = set()
    added = 0
    for user in engineers:
        point = points.get(user.service_point_id or -1)
        if point is None or point.latitude is None or point.longitude is None:
            continue
        skills = list(user.skills or [])
        for skill in list(skills):
            skills.extend(s for s in IMPLIED.get(skill, ()) if s not in skills)
        skills.extend(s for s in BASIC if s not in skills)
        user.skills = skills
        tools = ["co2_analyser", "reference_thermometer"] if rng.random() < 0.9 else ["reference_thermometer"]
        if "calibration" in skills and rng.random() < 0.7:
            tools.append("calibration_gas")
        if "o2" in skills:
            tools.append("o2_analyser")
        on_call = point.id not in on_call_taken
        on_call_taken.add(point.id)
        session.add(EngineerProfile(
            user_id=user.id, home_service_point_id=point.id, certifications=[], tools=tools, on_call=on_call,
            max_jobs_per_day=4, latitude=round(point.latitude + rng.uniform(-0.08, 0.08), 5),
            longitude=round(point.longitude + rng.uniform(-0.08, 0.08), 5), position_source="home"))
        added += 1
    return added
