"""Cases for jaxloss._segmentation (filled in by its author)."""

CASES: list = []
