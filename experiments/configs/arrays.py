r"""Your own arrays: any modalities on any regular grids, read from two `.npz` files.

Each file (one per split) holds one array per modality, keyed by its name: `[num_signals, *grid,
d_out]` (e.g. `img` `[n, 20, 30, 3]`), or `[num_signals, num_points]` for a 1-D signal with one
channel (e.g. `sig` `[n, 150]`); optionally `{name}_amplitude` `[num_signals]` (the per-signal
error normaliser). `data_pipelines.sources.save_npz` writes one:

  from data_pipelines.sources import save_npz
  save_npz("train.npz", {"img": images_train, "sig": signals_train})
  save_npz("test.npz", {"img": images_test, "sig": signals_test})

No benchmark to register: the modalities, their grid shapes (coordinates: a regular grid on
[-1, 1] per axis) and channels come from the train file; the test file must have the same. Each
distinct (grid, channels) is its own modality group, all adapted in one step.

  # MIA sized for a 2-core CPU, on every modality in the files:
  python -m experiments.main \
      --config=experiments/configs/arrays.py:train=train.npz,test=test.npz,cpu --workdir=/tmp/own
  # A baseline on one modality, five inner steps:
  python -m experiments.main --config=experiments/configs/arrays.py:train=train.npz,\
test=test.npz,modalities=img,method=cavia,inner_steps=5,cpu --workdir=/tmp/own_img
  # Seconds, for tests:
  python -m experiments.main \
      --config=experiments/configs/arrays.py:train=train.npz,test=test.npz,smoke --workdir=/tmp/o
  # What arrays cannot tell, as flags (one value for all, or name=value per modality):
  python -m experiments.main \
      --config=experiments/configs/arrays.py:train=train.npz,test=test.npz,cpu \
      --config.data.ratio_range=0.001:1,sig=0.25:1 --config.data.output_bias=img=0.5 \
      --config.data.ratio_bins=0:0.1:0.5:1 --config.data.error_normaliser=amplitude \
      --config.model.ff_sigmas=img=1,sig=10 --workdir=/tmp/own2
  # A modality saved without a channel axis, e.g. grayscale images `gray` [n, H, W], needs
  # --config.data.grid_ndims=gray=2 (else its last axis is read as channels).

Arguments: the standard ones (`experiments/configs/common.py`; `modalities` is a `+`-joined
subset of the file's, default all), and train, test (the `.npz` paths; a path with a comma goes
in --config.data.npz_train / npz_test instead).

Defaults (config.data; README "Your own data"): support ratio in [0.001, 1] with the quarters of
[0, 1] as evaluation bins (the paper's image settings); output bias = the train array's mean
(2 decimals); errors unnormalised unless the file gives `{name}_amplitude`. Model: the image
benchmarks' composer INR (128 Fourier features, rank 64, batch 32) with smooth Fourier features,
sigma 1 (the offline image sets learn best with it at CPU budgets, docs/results.md); signals with
fine detail want a larger sigma (--config.model.ff_sigmas=name=SIGMA). Scale values to about
[-1, 1] or [0, 1]: the outer learning rate and MIA's gradient scaler assume that range.

From Python, pass the arrays instead of files:

  from experiments.configs import arrays
  from experiments.run import train
  train.train_and_evaluate(arrays.get_config("cpu"), "/tmp/own",
                           data={"train": {"img": x, "sig": s}, "test": {"img": xt, "sig": st}})
"""

from experiments.configs import common, shared


def _files(c, args):
  c.data.update(dict(source="npz", npz_train=args["train"], npz_test=args["test"]))


# The image benchmarks' composer and batch, with smooth Fourier features (sigma 1).
BENCHMARK = common.Benchmark(
  "arrays",
  "",
  fields={**shared.IMAGE, "model.ff_sigma": 1.0, "num_train_steps": 50_000},
  own_args={"train": "", "test": ""},
  own=_files,
  presets={"cpu": {**shared.IMAGE_CPU, "num_train_steps": 800}, "smoke": shared.IMAGE_SMOKE},
)
ARGS, get_config, studies = BENCHMARK.exports()
