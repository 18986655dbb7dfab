"""Use cases: load through a unit of work, apply the domain rules, write, audit, commit."""
