"""A reduced-precision KV cache held to the reference model that rounds its cache the same way."""

import numpy as np


def check_logits_and_cache(backend, ref, fp32, prompt: list[int], as_float) -> None:
    """Prefill and two decode steps: the artifact's logits equal `ref`'s (the reference with the same cache type) within
    1e-3, closer than to `fp32` (the exact cache's reference); the buffers bound as its cache hold `ref`'s keys and
    values, read back to float32 by `as_float` (rows of the cache's type, numpy)."""
    for step in (prompt, [12], [250]):
        mine, want, far = backend.forward(step), ref.forward(step), fp32.forward(step)
        assert np.abs(mine - want).max() < 1e-3
        assert np.abs(mine - want).max() < np.abs(mine - far).max()
    n = len(prompt) + 2
    for layer in range(backend.layers):
        for j, mine in enumerate((ref.cache.k[layer], ref.cache.v[layer])):
            got = as_float(backend.buffers[2 * layer + j].numpy()[:, :, :n])
            assert np.abs(got - mine[:, :, :n].numpy()).max() < 1e-3, (layer, j)
