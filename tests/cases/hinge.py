"""Cases for jaxloss._hinge (filled in by its author)."""

CASES: list = []
