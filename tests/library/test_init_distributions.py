"""Every parameter group starts from its documented distribution (docs/architecture.md,
"Initialisation").

Each leaf of the initial state of every method and backbone is matched to exactly one row of
`RULES` (a leaf no row matches fails the test, so a new parameter needs its row here and in the
docs). A constant must be exact and a uniform leaf must stay inside its bounds. The draws of a
random group (e.g. every modality's `latent_init`) are pooled over the modalities and four seeds
and must pass a Kolmogorov-Smirnov test against the documented distribution at level 1e-6, with
a standard deviation within six standard errors of the documented one: a change of a few
percent in a scale is found (`test_check_states_catches_a_changed_distribution`). A change of
the keys alone (other values from the same distributions) passes here, and is what
`tests/end_to_end/test_science_fingerprint.py` catches.
"""

import math
import re

import jax
from jax.scipy.special import ndtr
import numpy as np
import pytest

from experiments.configs import celeba, synthetic
from experiments.run import build


def _torch(fan_in):
  return ("uniform", 1.0 / math.sqrt(fan_in))


# (pattern on `backbone:path`, modality names replaced by M, distribution(leaf, siblings, config)).
# A distribution is ("uniform", half_width), ("normal", std), ("truncated_normal", std) (cut at
# two of Flax's stds), ("const", value) or ("exact", array).
RULES = [
  # The composer INR (docs/method.md section 3): PyTorch's default Linear init,
  # U(+-1/sqrt(fan_in)), for kernels and biases; U [rank, hidden] with fan-in rank; the Fourier
  # matrix N(0, sigma^2).
  (
    r"composer:inr/M/backbone/(encoder|hidden_\d+|output|latent_map)/kernel",
    lambda x, s, c: _torch(x.shape[0]),
  ),
  (
    r"composer:inr/M/backbone/(encoder|hidden_\d+|output|latent_map)/bias",
    lambda x, s, c: _torch(s["kernel"].shape[0]),
  ),
  (r"composer:inr/M/backbone/U", lambda x, s, c: _torch(x.shape[0])),
  (r"composer:inr/M/backbone/latent_norm/scale", lambda x, s, c: ("const", 1.0)),
  (r"composer:inr/M/backbone/latent_norm/bias", lambda x, s, c: ("const", 0.0)),
  (r"\w+:inr/M/latent_init", lambda x, s, c: ("normal", c.model.latent_init_std)),
  (r"composer:buffers/M/buffers/fourier_B", lambda x, s, c: ("normal", c.model.ff_sigma)),
  # The functa backbone (SIREN): first sine layer U(+-1/fan_in), the others and the output
  # U(+-sqrt(6/fan_in)/w0), zero biases; the latent-to-shift map lecun-normal.
  (r"functa:inr/M/backbone/sine_0/kernel", lambda x, s, c: ("uniform", 1.0 / x.shape[0])),
  (
    r"functa:inr/M/backbone/(sine_[1-9]\d*|output)/kernel",
    lambda x, s, c: ("uniform", math.sqrt(6.0 / x.shape[0]) / c.model.w0),
  ),
  (
    r"functa:inr/M/backbone/latent_to_shifts/kernel",
    lambda x, s, c: ("truncated_normal", 1.0 / math.sqrt(x.shape[0])),
  ),
  (
    r"functa:inr/M/backbone/(sine_\d+|latent_to_shifts|output)/bias",
    lambda x, s, c: ("const", 0.0),
  ),
  # The outer loss's log-variances v_m (docs/method.md section 6) and the gradient scaler log s_m.
  (r"\w+:log_var/M", lambda x, s, c: ("const", 0.0)),
  (r"\w+:rule/scale/M", lambda x, s, c: ("const", math.log(c.rule.grad_scale))),
  # MetaSGD's learned rates, GAP's preconditioner, ALFA's decay and generator.
  (r"\w+:rule/learned_lr/M", lambda x, s, c: ("const", c.rule.inner_lr)),
  (r"\w+:rule/gap/M", lambda x, s, c: ("const", 0.928)),
  (r"\w+:rule/alfa/beta0/M", lambda x, s, c: ("const", 1.0)),
  (r"\w+:rule/alfa/mlp/M/dense_\d+/linear/kernel", lambda x, s, c: _torch(x.shape[0])),
  (r"\w+:rule/alfa/mlp/M/dense_\d+/linear/bias", lambda x, s, c: _torch(s["kernel"].shape[0])),
  (r"\w+:rule/alfa/mlp/M/out/kernel", lambda x, s, c: ("const", 0.0)),
  (
    r"\w+:rule/alfa/mlp/M/out/bias",
    lambda x, s, c: (
      "exact",
      np.concatenate([np.full(x.shape[0] // 2, c.rule.inner_lr), np.ones(x.shape[0] // 2)]),
    ),
  ),
  # The SFTs: PyTorch's default init for every linear map (qkv has no bias), LayerNorm and
  # GroupNorm at scale 1 and bias 0, positional embeddings N(0, 0.2^2).
  (r"\w+:rule/sft/.*/(kernel)", lambda x, s, c: _torch(x.shape[0])),
  (r"\w+:rule/sft/.*/linear/bias", lambda x, s, c: _torch(s["kernel"].shape[0])),
  (r"\w+:rule/sft/.*/(ln_\w+|group_norm)/scale", lambda x, s, c: ("const", 1.0)),
  (r"\w+:rule/sft/.*/(ln_\w+|group_norm)/bias", lambda x, s, c: ("const", 0.0)),
  (r"\w+:rule/sft/encoder/M/pos_embedding", lambda x, s, c: ("normal", 0.2)),
]

CONFIGS = {
  "mia": (synthetic, "method=mia,cpu"),
  "mia_spec_ablations": (synthetic, "method=mia,ablation=no_fuser,cpu,variant=spec"),
  "metasgd": (synthetic, "method=metasgd,cpu"),
  "alfa": (synthetic, "method=alfa,cpu"),
  "gap": (synthetic, "method=gap,cpu"),
  "functa": (synthetic, "method=mia,backbone=functa,cpu"),
  "image": (celeba, "method=mia"),
}


def _cdf(kind, scale, x):
  if kind == "uniform":
    return np.clip((x + scale) / (2 * scale), 0.0, 1.0)
  phi = lambda z: np.asarray(ndtr(z), np.float64)  # the standard normal CDF
  if kind == "normal":
    return phi(x / scale)
  # Flax's truncated normal: N(0, s^2) cut at +-2 s, s = std / 0.8796 (unit variance after the cut).
  s = scale / 0.87962566103423978
  lo, hi = phi(-2.0), phi(2.0)
  return np.clip((phi(np.clip(x / s, -2, 2)) - lo) / (hi - lo), 0.0, 1.0)


def _std(kind, scale):
  return {"uniform": scale / math.sqrt(3.0), "normal": scale, "truncated_normal": scale}[kind]


def _leaves(state):
  out = []
  for prefix, tree in (("", state.params), ("buffers/", state.buffers)):
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    for path, leaf in flat:
      keys = [str(getattr(p, "key", p)) for p in path]
      out.append((prefix + "/".join(keys), keys, np.asarray(leaf, np.float64)))
  return out


def _siblings(state, prefix, keys):
  tree = state.params if not prefix else state.buffers
  for k in keys[:-1]:
    tree = tree[k]
  return {k: np.asarray(v) for k, v in tree.items() if not isinstance(v, dict)}


def check_states(states, config, names):
  """Checks every leaf of the `states` (initial states of one learner from several seeds) against
  `RULES`; returns the list of (path, problem).

  A constant is checked leaf by leaf. The draws of a random distribution are pooled over the
  modalities and the seeds that share a row and its parameter (a group: e.g. every modality's
  `latent_init`), so that the test sees a few percent's change of a scale.
  """
  problems, pools = [], {}
  for state in states:
    for path, keys, x in _leaves(state):
      pattern_path = (
        config.model.backbone + ":" + "/".join("M" if k in names else k for k in path.split("/"))
      )
      matches = [dist for pat, dist in RULES if re.fullmatch(pat, pattern_path)]
      if len(matches) != 1:
        problems.append((path, f"{len(matches)} rows of RULES match {pattern_path!r}"))
        continue
      prefix = "buffers/" if path.startswith("buffers/") else ""
      kind, value = matches[0](x, _siblings(state, prefix, keys), config)
      if kind == "const":
        if not np.all(x == np.float32(value)):
          problems.append(
            (path, f"expected the constant {value}, got values in [{x.min():.4g}, {x.max():.4g}]")
          )
      elif kind == "exact":
        if not np.array_equal(x, np.asarray(value, np.float32)):
          problems.append((path, f"expected {value}, got {x}"))
      elif kind == "uniform" and np.abs(x).max() > value * (1 + 1e-6):
        problems.append((path, f"outside U(+-{value:.4g}): [{x.min():.4g}, {x.max():.4g}]"))
      else:
        pools.setdefault((pattern_path, kind, value), []).append(x.ravel())
  for (group, kind, value), parts in pools.items():
    flat = np.sort(np.concatenate(parts))
    n = flat.size
    cdf = _cdf(kind, value, flat)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    critical = math.sqrt(-math.log(0.5e-6) / (2 * n))  # KS level 1e-6
    if ks > critical:
      problems.append(
        (
          group,
          f"KS distance {ks:.3f} from {kind}({value:.4g}) > {critical:.3f} "
          f"(n={n}, std {flat.std():.4g})",
        )
      )
    # The sample std's standard error is at most 0.71 std / sqrt(n) (normal; 0.45 uniform).
    want = _std(kind, value)
    if abs(flat.std() - want) > 6 * 0.71 * want / math.sqrt(n) + 1e-12:
      problems.append((group, f"std {flat.std():.4g}, expected {want:.4g} (n={n})"))
  return problems


SEEDS = (0, 1, 2, 3)


def _states(learner):
  return [learner.init(jax.random.PRNGKey(seed)) for seed in SEEDS]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_initialisation_matches_documented_distributions(name):
  module, args = CONFIGS[name]
  config = module.get_config(args)
  learner = build.learner_from_config(config)
  problems = check_states(_states(learner), config, set(learner.names))
  assert not problems, "\n".join(f"{p}: {why}" for p, why in problems)


def test_check_states_catches_a_changed_distribution():
  """The check itself: initial latents 5% wider, a kernel 4% narrower than its fan-in's bound and
  a scaler at another value are each found."""
  config = synthetic.get_config("method=mia,cpu")
  learner = build.learner_from_config(config)

  def changed(state):
    params = jax.tree.map(np.asarray, state.params)
    for name in learner.names:
      params["inr"][name]["latent_init"] = 1.05 * params["inr"][name]["latent_init"]
      hidden = params["inr"][name]["backbone"]["hidden_0"]
      hidden["kernel"] = 0.96 * hidden["kernel"]
    params["rule"]["scale"]["relu"] = np.float32(0.0)
    return state.replace(params=params)

  found = {
    p for p, _ in check_states([changed(s) for s in _states(learner)], config, set(learner.names))
  }
  assert found == {
    "composer:inr/M/latent_init",
    "composer:inr/M/backbone/hidden_0/kernel",
    "rule/scale/relu",
  }, found
