"""Update rules as composable pieces, in the spirit of optax's `GradientTransformation`.

An update rule turns every modality's support-loss gradient and latent into the inner-loop update.
Every tree is keyed by modality name, with per-signal arrays read as tokens (`mia_jax.tokens`):

    grads, latents:  {name: [B, T, W]}

A piece is an `UpdateRule(init, apply, project)` of pure functions:

    params = init(rng, token_shapes)                 token_shapes: {name: (T, W)}
    updates, latents = apply(params, updates, latents)
    params = project(params)                         after every outer step (e.g. clipping)

and the inner loop sets `z <- latents - updates`. `chain(a, b, ...)` feeds the updates (and the
latents) of each piece to the next, starting from the raw gradients, so

    CAVIA    = chain(learning_rate(alpha))
    MetaSGD  = chain(learned_learning_rate(alpha))
    MIA      = chain(gradient_scaler(10), learning_rate(1), sft(...))

and any other order or mixture is a chain too. Per-modality parameters are keyed by modality name
(never by an internal group); pieces that vmap one module over modalities stack the same-shaped
modalities internally (`stack_by_token_shape`).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from mia_jax.modalities import name_hash

PyTree = Any
Tokens = Mapping[str, jax.Array]
TokenShapes = Mapping[str, tuple[int, int]]


class UpdateRule(NamedTuple):
  """A pure `(init, apply, project)` triple; `name` keys its parameters inside a `chain`."""

  init: Callable[[jax.Array, TokenShapes], PyTree]
  apply: Callable[[PyTree, Tokens, Tokens], tuple[dict, dict]]
  project: Callable[[PyTree], PyTree] = lambda params: params
  name: str = "rule"
  # Multipliers of the outer (meta) learning rate, a tree like the piece's parameters; None: 1.
  outer_lr: Callable[[PyTree], PyTree] | None = None


def identity() -> UpdateRule:
  """`u = g`: the raw gradient (CAVIA with learning rate 1)."""
  return UpdateRule(
    lambda rng, shapes: {}, lambda params, u, z: (dict(u), dict(z)), name="identity"
  )


def chain(*rules: UpdateRule) -> UpdateRule:
  """Applies `rules` in order; parameters are `{piece name: params}` (names made unique).

  Args:
    *rules: the pieces; at least one.

  Returns:
    An `UpdateRule` whose `apply` threads `(updates, latents)` through every piece.
  """
  if not rules:
    raise ValueError("chain() needs at least one update rule.")
  for r in rules:
    if not isinstance(r, UpdateRule):
      raise TypeError(f"chain() takes UpdateRule pieces, got {type(r).__name__}: {r!r}.")
  keys: list[str] = []
  for r in rules:
    key, n = r.name, 0
    while key in keys:  # a repeated piece gets the first free suffix: lr, lr_1, lr_2, ...
      n += 1
      key = f"{r.name}_{n}"
    keys.append(key)

  def init(rng, token_shapes):
    return {
      k: r.init(jax.random.fold_in(rng, i), token_shapes)
      for i, (k, r) in enumerate(zip(keys, rules))
    }

  def apply(params, updates, latents):
    for k, r in zip(keys, rules):
      updates, latents = r.apply(params[k], updates, latents)
    return updates, latents

  def project(params):
    return {k: r.project(params[k]) for k, r in zip(keys, rules)}

  def outer_lr(params):
    return {
      k: r.outer_lr(params[k]) if r.outer_lr else jax.tree.map(lambda _: 1.0, params[k])
      for k, r in zip(keys, rules)
    }

  scaled = any(r.outer_lr is not None for r in rules)
  return UpdateRule(init, apply, project, name="chain", outer_lr=outer_lr if scaled else None)


# -- helpers for pieces ----------------------------------------------------------------------------


def modality_key(rng: jax.Array, name: str) -> jax.Array:
  """A key for a modality's parameters that does not depend on which other modalities exist."""
  return jax.random.fold_in(rng, name_hash(name))


def stack_by_token_shape(shapes: Mapping[str, Any]) -> list[tuple[str, ...]]:
  """Modality names grouped by equal (hashable) shapes, in order of first appearance."""
  groups: dict[Any, list[str]] = {}
  for name, shape in shapes.items():
    groups.setdefault(shape, []).append(name)
  return [tuple(v) for v in groups.values()]


def tree_stack(trees: Sequence[PyTree]) -> PyTree:
  """Stacks same-structured trees on a new leading axis."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def init_per_modality(
  module,
  rng: jax.Array,
  token_shapes: TokenShapes,
  example_args: Callable[[tuple[int, ...]], Sequence[jax.Array]],
) -> dict:
  """`{name: module params}`, each initialised from `modality_key(rng, name)`."""
  return {
    name: module.init(modality_key(rng, name), *example_args(tuple(shape)))["params"]
    for name, shape in token_shapes.items()
  }


def apply_per_modality(
  module, params: Mapping[str, PyTree], inputs: Sequence[Tokens], names: Sequence[str]
) -> dict:
  """Applies each modality's copy of `module`; same-shaped modalities stacked and vmapped.

  Args:
    module: a Flax module applied to one modality's `[B, T, ...]` arrays.
    params: `{name: params}`.
    inputs: the module's positional inputs, each `{name: array}`.
    names: the modalities to apply it to, in order.

  Returns:
    `{name: output}`.
  """
  shapes = {n: tuple(tuple(x[n].shape) for x in inputs) for n in names}
  out = {}
  for members in stack_by_token_shape(shapes):
    if len(members) == 1:
      n = members[0]
      out[n] = module.apply({"params": params[n]}, *(x[n] for x in inputs))
      continue
    stacked = jax.vmap(lambda p, *a: module.apply({"params": p}, *a))(
      tree_stack([params[n] for n in members]),
      *(jnp.stack([x[n] for n in members]) for x in inputs),
    )
    out.update({n: jax.tree.map(lambda x, i=i: x[i], stacked) for i, n in enumerate(members)})
  return out
