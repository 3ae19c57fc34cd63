"""A KV cache that writes each decoding step into room reserved up front.

transformers' ``DynamicLayer`` concatenates every step's keys and values onto the whole cache
(``torch.cat``), copying all of it once per generated token and layer: on a compute-bound model
that copy took about a quarter of greedy decoding. A :class:`ReservedLayer` is a ``DynamicLayer``
whose keys and values are views of buffers sized for prompt + reply, so a step writes only its
own token. The attention reads the same numbers in the same order, so the tokens do not change.
"""

from __future__ import annotations

from transformers.cache_utils import DynamicLayer


class ReservedLayer(DynamicLayer):
    """A ``DynamicLayer`` that writes new keys and values into buffers with room for ``capacity``
    positions (grown, by copying once, if a step needs more)."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0
        self._keys = None
        self._values = None

    @classmethod
    def over(cls, keys, values, length: int) -> ReservedLayer:
        """A reserved layer over the buffers ``keys`` and ``values`` whose first ``length`` positions are filled."""
        reserved = cls(int(keys.shape[-2]))
        reserved.lazy_initialization(keys, values)
        reserved._keys, reserved._values, reserved.length = keys, values, length
        reserved.keys, reserved.values = keys[..., :length, :], values[..., :length, :]
        return reserved

    def update(self, key_states, value_states, *args, **kwargs):
        """Write the new positions after the cached ones; return views of everything cached."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + int(key_states.shape[-2])
        if self._keys is None or end > self._keys.shape[-2]:
            self._reserve(key_states, value_states, max(self.capacity, end))
        self._keys[..., self.length:end, :] = key_states
        self._values[..., self.length:end, :] = value_states
        self.length = end
        self.keys = self._keys[..., :end, :]
        self.values = self._values[..., :end, :]
        return self.keys, self.values

    def _reserve(self, key_states, value_states, capacity: int) -> None:
        rows, key_heads, _, key_dim = key_states.shape
        keys = key_states.new_empty((rows, key_heads, capacity, key_dim))
        values = value_states.new_empty((rows, value_states.shape[1], capacity, value_states.shape[-1]))
        if self.length:
            keys[..., :self.length, :] = self.keys
            values[..., :self.length, :] = self.values
        self._keys, self._values = keys, values

    def batch_select_indices(self, indices) -> None:
        """Keep only the rows ``indices`` (buffers and views)."""
        if self._keys is not None:
            self._keys, self._values = self._keys[indices, ...], self._values[indices, ...]
            self.keys = self._keys[..., :self.length, :]
            self.values = self._values[..., :self.length, :]
        elif self.length:
            super().batch_select_indices(indices)

