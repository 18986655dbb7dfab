"""Speed figures for incucare, printed by `make bench` and quoted in closing notes; never asserted."""
