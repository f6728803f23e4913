"""Cases for jaxloss._metric (filled in by its author)."""

CASES: list = []
