"""Customer care storage (issue 7): satisfaction surveys, maintenance agreements' schedules and preventive visits."""

from __future__ import annotations
