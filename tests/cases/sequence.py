"""Cases for jaxloss._sequence (ctc).

Every case is feasible (each label fits its frames, repeats counting twice): an
infeasible label has loss +inf and is tested in tests/test_sequence.py.
"""

import numpy as np

from . import Case


def _random_labels(rng, batch, max_len, classes, time, blank=0):
    """Right-padded labels of random lengths (one of them empty, one full), with repeats."""
    non_blank = np.array([k for k in range(classes) if k != blank])
    labels = np.full((batch, max_len), blank, np.int32)
    for b in range(batch):
        length = [0, max_len][b] if b < 2 else int(rng.integers(0, max_len + 1))
        row = rng.choice(non_blank, length)
        if length >= 2:
            row[1] = row[0]  # a repeat: needs a blank frame between the copies
        while length + int(np.sum(row[1:] == row[:-1])) > time:
            row = row[:-1]
            length -= 1
        labels[b, :length] = row
    return labels


def _random(batch, time, classes, max_len, blank=0, scale=1.0):
    def make(rng):
        labels = _random_labels(rng, batch, max_len, classes, time, blank)
        return labels, (scale * rng.normal(size=(batch, time, classes))).astype(np.float32)

    return make


def _fixed(labels, time, classes):
    def make(rng):
        labels_ = np.asarray(labels, np.int32)
        return labels_, rng.normal(size=(labels_.shape[0], time, classes)).astype(np.float32)

    return make


def _full_labels(batch, time, classes, max_len, blank=0):
    # Labels of every length, with no padding value: label_lengths says where they end.
    def make(rng):
        non_blank = np.array([k for k in range(classes) if k != blank])
        labels = rng.choice(non_blank, (batch, max_len)).astype(np.int32)
        return labels, rng.normal(size=(batch, time, classes)).astype(np.float32)

    return make


# [1, 1, 2] needs 4 frames (the repeat needs a blank between), [2, 3, 4] needs 3,
# [3, 3, 3] needs 5: with time == 5 the last one has exactly its minimal length.
_TIGHT = [[1, 1, 2], [2, 3, 4], [3, 3, 3], [0, 0, 0]]

CASES = [
    Case("ctc", {}, _random(4, 8, 5, 3)),
    Case("ctc", {}, _random(3, 15, 8, 6, scale=2.0), label="longer"),
    Case("ctc", {}, _random(2, 6, 3, 4), label="few_classes"),
    Case("ctc", {}, _fixed(_TIGHT, 5, 5), label="minimal_time"),
    Case("ctc", {}, _fixed([[1, 2, 3, 4]], 4, 6), label="no_blank_frame"),
    Case("ctc", {}, _fixed([[0, 0], [0, 0]], 3, 4), label="empty_labels"),
    Case("ctc", {"zero_infinity": True}, _random(4, 8, 5, 3), keras_options={}),
    # Beyond Keras: optax's blank_id, per-example lengths (tested against optax in test_sequence.py).
    Case("ctc", {"blank_index": 2}, _random(4, 8, 5, 3, blank=2), keras_options=None),
    Case("ctc", {"blank_index": 4}, _random(3, 9, 5, 4, blank=4), keras_options=None),
    Case(
        "ctc",
        {"label_lengths": np.array([2, 3, 0, 1]), "logit_lengths": np.array([8, 6, 3, 5])},
        _full_labels(4, 8, 5, 3),
        label="lengths",
        keras_options=None,
    ),
    Case(
        "ctc",
        {"blank_index": 1, "logit_lengths": np.array([7, 4, 9])},
        _random(3, 9, 4, 3, blank=1),
        label="blank1_logit_lengths",
        keras_options=None,
    ),
]
