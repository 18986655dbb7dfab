"""Electronic signatures (issue 7): who signed which record revision, with what meaning, when."""

from __future__ import annotations
