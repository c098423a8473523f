"""How an update rule sees a latent: a sequence of tokens `[T, W]`.

Backbones declare the per-signal latent's shape (`backbone.latent_shape`). The inner loop and every
update rule work on the latent read as `T` tokens of width `W`, a row-major reshape (exact, free):

* `token_width = 0`: the latent's last axis is the token width. A `[rank, hidden]` composer latent
  is `rank` tokens of width `hidden`; a `[d1, ..., dn, w]` latent is `d1 * ... * dn` tokens of
  width `w`; a vector latent `[d]` is one token of width `d`.
* `token_width = t > 0`: the latent is flattened row-major and cut into `size / t` tokens of width
  `t` (`t` must divide the latent's size). A functa latent vector `[128]` with `t = 16` is 8 tokens
  of 16 consecutive entries.

The tokens are what MIA's SFTs attend over (per modality in the USFT, jointly across modalities in
the MSFT), what ALFA averages per token and what MetaSGD's per-element rates are shaped like.
"""

from __future__ import annotations

import math
from typing import Sequence


def token_shape(latent_shape: Sequence[int], token_width: int = 0) -> tuple[int, int]:
  """`(T, W)` of a latent of `latent_shape` under the rule above.

  Raises:
    ValueError: an empty or non-positive latent shape, a negative token width, or one that does
      not divide the latent's size.
  """
  latent_shape = tuple(int(s) for s in latent_shape)
  if not latent_shape or min(latent_shape) < 1:
    raise ValueError(f"A latent needs at least one axis and positive sizes, got {latent_shape}.")
  if token_width < 0:
    raise ValueError(f"token_width must be >= 0 (0 = the latent's last axis), got {token_width}.")
  size = math.prod(latent_shape)
  width = token_width or latent_shape[-1]
  if size % width:
    raise ValueError(
      f"token_width={token_width} does not divide the latent of shape "
      f"{latent_shape} ({size} entries); use a divisor of {size} or 0 (the last "
      "axis)."
    )
  return size // width, width
