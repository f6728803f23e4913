"""Cases for jaxloss._sequence (filled in by its author)."""

CASES: list = []
