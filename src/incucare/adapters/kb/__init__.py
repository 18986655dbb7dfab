"""Knowledge data shipped with the package: the fault taxonomy (and, later, the article index)."""
