"""Cases for jaxloss._probabilistic (filled in by its author)."""

CASES: list = []
