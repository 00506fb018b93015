"""Length-grouped batches of the ONNX encoder: every text once, little padding, size-capped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.embeddings.onnx_minilm import _length_batches


@given(st.lists(st.integers(1, 256), max_size=200), st.integers(1, 64))
def test_every_text_is_in_exactly_one_batch_of_similar_lengths(
    lengths: list[int], batch_size: int
) -> None:
    batches = _length_batches(lengths, batch_size)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        longest = lengths[batch[0]]
        assert all(0.9 * longest <= lengths[i] <= longest for i in batch)


def test_equal_lengths_share_a_batch() -> None:
    assert _length_batches([12, 19, 12, 12, 19], 64) == [[1, 4], [0, 2, 3]]
