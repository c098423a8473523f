"""The outer loop (docs/method.md section 6): meta-loss, `train_step`, `eval_step`, data
parallelism.

Meta-parameters form one tree, `{"inr": ..., "rule": ..., "log_var": {name: []}}`, trained by one
optax optimiser: any `optax.GradientTransformation`, by default Adam at lr 1e-4
(`mia_jax.optim`). A rule piece may scale its parameters' updates (`UpdateRule.outer_lr`, e.g.
MIA's gradient scaler) and project them after the step (`UpdateRule.project`).

The outer loss is the query MSE on the full grid after K inner steps per modality, weighted by a
learned uncertainty `v_m`:

    loss = sum_m  L_m / (2 exp(v_m)) + v_m / 2                        (the paper's)
    loss = sum_m  (sg(L0_m) + L_m) / (2 exp(v_m)) + v_m                (initial_loss=True)

where `L0_m` is the query MSE before adaptation, without its gradient (`sg`): the released code
keeps it in the loss dict its uncertainty weighting sums over.

Data parallelism: the batch is sharded over a one-axis `data` mesh of all devices and the state is
replicated; `jax.jit` partitions the step (GSPMD), so the same code runs on 1 or N devices, in one
process or several (JAX's multi-controller runtime: each process feeds its own rows of the batch,
`put_batch`), and gradients are averaged across devices by the compiler.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import flax
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax

from mia_jax import adaptation, optim, sampling
from mia_jax.model import MultimodalINR
from mia_jax.rules import UpdateRule

PyTree = Any
COMPUTE_DTYPES = ("float32", "bfloat16")  # MetaConfig.compute_dtype


@flax.struct.dataclass
class TrainState:
  """Everything that changes during meta-training (a pytree; checkpointed whole)."""

  step: jax.Array
  params: PyTree
  opt_state: PyTree
  buffers: PyTree
  rng: jax.Array


@dataclasses.dataclass(frozen=True)
class MetaConfig:
  """Inner/outer-loop settings."""

  inner_steps: int = 3
  first_order: bool = False
  remat: bool = False
  scan_unroll: int = 1
  # The default optimiser's settings (`optim.default_optimizer`; unused when `MetaLearner` is given
  # an optimiser): Adam at `learning_rate`, constant or on a schedule (`optim.LR_SCHEDULES`:
  # "warmup_cosine" rises linearly over `warmup_steps`, then decays to 0 at `decay_steps`).
  learning_rate: float = 1e-4
  grad_clip: float = 0.0  # global-norm clip of the meta-gradient; 0 = none.
  lr_schedule: str = "constant"
  warmup_steps: int = 0
  decay_steps: int = 0
  # A step whose loss or meta-gradient is not finite leaves the parameters and the optimiser state
  # as they were (as optax.apply_if_finite); the step counter still advances. Counted in the
  # step's metrics as `nonfinite` (1.0 for a skipped step).
  skip_nonfinite: bool = False
  # How a training support's size is drawn (`sampling.SUPPORT_COUNTS`, docs/method.md section 2):
  # "floor" (the paper's, floor(R * N)) or "closed" (the released code's: uniform integers, both
  # ends included).
  support_counts: str = "floor"
  # The detached query loss before adaptation enters the uncertainty weighting (released code).
  initial_loss: bool = False
  # Mixed precision: "bfloat16" runs the INRs and the update rule in bf16 (matmuls included),
  # with float32 parameters, latents between inner steps, losses and optimiser.
  compute_dtype: str = "float32"

  def __post_init__(self):
    if self.inner_steps < 0:
      raise ValueError(f"inner_steps must be >= 0, got {self.inner_steps}.")
    if self.scan_unroll < 1:
      raise ValueError(f"scan_unroll must be >= 1, got {self.scan_unroll}.")
    sampling.check_support_counts(self.support_counts)
    if self.compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(
        f"Unknown compute_dtype {self.compute_dtype!r}; allowed: {', '.join(COMPUTE_DTYPES)}."
      )
    self.default_optimizer()  # checks the rate, the clip and the schedule

  def default_optimizer(self) -> optax.GradientTransformation:
    """The default outer optimiser of these settings (`optim.default_optimizer`)."""
    return optim.default_optimizer(
      self.learning_rate, self.grad_clip, self.lr_schedule, self.warmup_steps, self.decay_steps
    )


class MetaLearner:
  """A multimodal INR, an update rule and the meta settings: builds states and the step functions.

  Args:
    model: the INR learners (`MultimodalINR`).
    rule: the update rule (`mia_jax.rules`: a piece or a `chain` of pieces).
    meta_config: inner/outer loop settings.
    optimizer: the outer optimiser, any `optax.GradientTransformation` of the meta-parameters
      (default: `meta_config.default_optimizer()`, Adam after an optional clip). The rule's
      outer-rate multipliers (`optim.with_outer_lr`) and, with `meta_config.skip_nonfinite`, the
      skip of non-finite steps (`optim.skip_nonfinite`) are put around it.
  """

  def __init__(
    self,
    model: MultimodalINR,
    rule: UpdateRule,
    meta_config: MetaConfig = MetaConfig(),
    optimizer: optax.GradientTransformation | None = None,
  ):
    if not isinstance(model, MultimodalINR):
      raise TypeError(f"model must be a MultimodalINR, got {type(model).__name__}.")
    if not isinstance(rule, UpdateRule):
      raise TypeError(
        f"rule must be an UpdateRule (see mia_jax.rules), got {type(rule).__name__}: {rule!r}."
      )
    self.model = model
    self.specs = model.specs
    self.rule = rule
    if not isinstance(meta_config, MetaConfig):
      raise TypeError(f"meta_config must be a MetaConfig, got {type(meta_config).__name__}.")
    self.meta = meta_config
    if optimizer is None:
      optimizer = meta_config.default_optimizer()
    elif not isinstance(optimizer, optax.GradientTransformation):
      raise TypeError(
        f"optimizer must be an optax.GradientTransformation (e.g. optax.adam(1e-4)), "
        f"got {type(optimizer).__name__}: {optimizer!r}."
      )
    self.optimizer = optimizer
    tx = optim.with_outer_lr(optimizer, rule)
    self.tx = optim.skip_nonfinite(tx) if meta_config.skip_nonfinite else tx

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(s.name for s in self.specs)

  @property
  def groups(self):
    """The model's stacks of same-signature modalities (internal; trees are keyed by name)."""
    return self.model.groups

  # -- state ---------------------------------------------------------------------------------------

  def init(self, rng: jax.Array) -> TrainState:
    k_model, k_rule, k_state = jax.random.split(rng, 3)
    inr_params, buffers = self.model.init(k_model)
    params = {
      "inr": inr_params,
      "rule": self.rule.init(k_rule, self.model.token_shapes),
      "log_var": {n: jnp.zeros((), jnp.float32) for n in self.names},
    }
    return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      opt_state=self.tx.init(params),
      buffers=buffers,
      rng=k_state,
    )

  # -- loss ----------------------------------------------------------------------------------------

  def loss_fn(
    self, params: PyTree, buffers: PyTree, batch: Mapping, episode: Mapping, track: bool = False
  ) -> tuple[jax.Array, dict]:
    """Uncertainty-weighted query loss after K steps.

    Args:
      batch, episode: modality-keyed (see `adaptation`).

    Returns:
      (loss, aux) with aux `{"query_mse": {name: scalar}, "support_loss": {name: [K]},
      "errors": {name: {measure: [K+1, B]}} and "ratio": {name: [B]} (if track)}`.
    """
    _, pred, aux = adaptation.adapt(
      self.model,
      self.rule,
      params,
      buffers,
      batch,
      episode,
      self.meta.inner_steps,
      first_order=self.meta.first_order,
      remat=self.meta.remat,
      track=track,
      unroll=self.meta.scan_unroll,
      initial=self.meta.initial_loss,
      compute_dtype=jnp.dtype(self.meta.compute_dtype),
    )
    loss: Any = 0.0
    query_mse, support_loss = {}, {}
    for n in self.names:
      y = jnp.asarray(batch[n]["y"], jnp.float32)
      mse = jnp.mean(jnp.square(pred[n] - y))
      terms = [mse]
      if self.meta.initial_loss:  # detached: it weighs v_m only
        terms.append(jax.lax.stop_gradient(jnp.mean(jnp.square(aux["initial_prediction"][n] - y))))
      v = params["log_var"][n]
      for term in terms:
        loss = loss + term / (2.0 * jnp.exp(v)) + v / 2.0
      query_mse[n] = mse
      support_loss[n] = jnp.mean(aux["support_loss"][n], axis=-1)
    out: dict[str, Any] = {"query_mse": query_mse, "support_loss": support_loss}
    if track:
      out["errors"] = {n: {m: aux["errors"][m][n] for m in aux["errors"]} for n in self.names}
      out["ratio"] = {n: episode[n]["ratio"] for n in self.names}
    return loss, out

  # -- steps (pure; jit them with `make_train_step` / `make_eval_step`) ----------------------------

  def train_step(self, state: TrainState, batch: Mapping) -> tuple[TrainState, dict]:
    """One meta-training step: sample supports on device, meta-gradient, optimiser, projection."""
    rng = jax.random.fold_in(state.rng, state.step)
    batch_size = next(iter(batch.values()))["y"].shape[0]
    episode = sampling.sample_episode(rng, self.specs, batch_size, self.meta.support_counts)
    (loss, aux), grads = jax.value_and_grad(self.loss_fn, has_aux=True)(
      state.params, state.buffers, batch, episode
    )
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params, value=loss)
    params = optax.apply_updates(state.params, updates)
    params = dict(params, rule=self.rule.project(params["rule"]))
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    metrics = {
      "loss": loss,
      "grad_norm": grad_norm,
      "nonfinite": 1.0 - finite.astype(jnp.float32),
      "query_mse": aux["query_mse"],
      "support_loss": aux["support_loss"],
    }
    new = state.replace(  # type: ignore[attr-defined]  # flax.struct adds it
      step=state.step + 1, params=params, opt_state=opt_state
    )
    return new, metrics

  def eval_step(self, params: PyTree, buffers: PyTree, batch: Mapping, episode: Mapping) -> dict:
    """Per-signal errors after every inner step: `{name: {measure: [K+1, B]}}` plus ratios."""
    _, aux = self.loss_fn(params, buffers, batch, episode, track=True)
    return {"errors": aux["errors"], "ratio": aux["ratio"]}


# -- data parallelism ------------------------------------------------------------------------------


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A one-axis mesh named `data` over the given devices (default: all of them, of every process
  after `jax.distributed.initialize`)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.array(devices), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


class _OnMesh:
  """A jitted function called (and lowered) with `mesh` set (`jax.set_mesh`): code inside it may
  then place values with a bare `PartitionSpec` (e.g. `sampling`'s replicated draws)."""

  def __init__(self, fn, mesh: Mesh):
    self._fn, self._mesh = fn, mesh

  def __call__(self, *args):
    with jax.set_mesh(self._mesh):
      return self._fn(*args)

  def lower(self, *args):
    with jax.set_mesh(self._mesh):
      return self._fn.lower(*args)

  def __getattr__(self, name):  # the rest of the jitted function's interface
    return getattr(self._fn, name)


def make_train_step(learner: MetaLearner, mesh: Mesh, donate: bool = True):
  """Jitted `train_step(state, batch) -> (state, metrics)`, batch sharded over `data`."""
  rep, shard = replicated(mesh), batch_sharding(mesh)
  return _OnMesh(
    jax.jit(
      learner.train_step,
      in_shardings=(rep, shard),
      out_shardings=(rep, rep),
      donate_argnums=(0,) if donate else (),
    ),
    mesh,
  )


def make_eval_step(learner: MetaLearner, mesh: Mesh):
  """Jitted `eval_step(params, buffers, batch, episode) -> per-signal errors`, batch sharded over
  `data`; the errors come back replicated, so every process holds all of them."""
  rep, shard = replicated(mesh), batch_sharding(mesh)
  return jax.jit(learner.eval_step, in_shardings=(rep, rep, shard, shard), out_shardings=rep)


def put_batch(tree: PyTree, mesh: Mesh) -> PyTree:
  """Places a host batch on the devices, sharded on its leading axis.

  With one process, `tree` is the whole batch. With several, it is this process's rows (the
  global batch's rows `[i * b, (i + 1) * b)` for process `i`, `b` = batch / processes, as
  `data_pipelines`' `make_loader(num_shards=, shard_index=)` reads them), and the global batch
  is assembled from every process's part (`jax.make_array_from_process_local_data`).
  """
  sharding = batch_sharding(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree.map(
    lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree
  )


def put_replicated(tree: PyTree, mesh: Mesh) -> PyTree:
  """Places a state (the same value on every process) on every device of `mesh`."""
  return jax.device_put(jax.device_get(tree), replicated(mesh))
