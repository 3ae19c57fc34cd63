"""A KV cache that writes each decoding step into room reserved up front.

transformers' ``DynamicLayer`` concatenates every step's keys and values onto the whole cache
(``torch.cat``), copying all of it once per generated token and layer: on a compute-bound model
that copy took about a quarter of greedy decoding. A :class:`ReservedLayer` is a ``DynamicLayer``
whose keys and values are views of buffers sized for prompt + reply, so a step writes only its
own token. The attention reads the same numbers in the same order, so the tokens do not change.
"""

from __future__ import annotations

from transformers.cache_utils import DynamicCache, DynamicLayer


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
    def holding(cls, layer: DynamicLayer, capacity: int) -> ReservedLayer:
        """A reserved layer that starts with ``layer``'s keys and values (copied at the first update)."""
        reserved = cls(capacity)
        if layer.is_initialized and layer.get_seq_length() > 0:
            reserved.lazy_initialization(layer.keys, layer.values)  # type: ignore[arg-type]  # initialised above
            reserved.keys, reserved.values = layer.keys, layer.values
            reserved.length = layer.get_seq_length()
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


def reserved_cache(config, capacity: int, prefix: DynamicCache | None = None) -> DynamicCache:
    """A ``DynamicCache`` of :class:`ReservedLayer` s with room for ``capacity`` positions, starting
    from ``prefix``'s keys and values when given (``config``: the model's, one layer per decoder layer)."""
    cache = DynamicCache()
    if prefix is not None:
        cache.layers = [ReservedLayer.holding(layer, capacity)  # type: ignore[arg-type]  # a plain dynamic cache
                        for layer in prefix.layers]
    else:
        cache.layers = [ReservedLayer(capacity) for _ in range(config.get_text_config(decoder=True).num_hidden_layers)]
    return cache
