"""Pure business rules: no frameworks, no I/O, time is always passed in."""
