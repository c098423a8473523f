"""The cases of the bad-input sweep (`test_reliability.py`, docs/reliability.md): one command line
per case, the exit code it must end with, and what its one `error:` line must name."""

import dataclasses

SYN = "experiments/configs/synthetic.py"
SMOKE = f"--config={SYN}:smoke"
ARRAYS = "experiments/configs/arrays.py"
DATA = "--config.data.data_dir={data}"
# The trained workdir's command (`trained` fixture): a finished 4-step CAVIA smoke run.
TRAINED = [
  f"--config={SYN}:method=cavia,smoke",
  DATA,
  "--config.data.num_test_signals=8",
  "--config.num_train_steps=4",
]
NAMES = ("sine", "tanh", "gaussian", "relu")


@dataclasses.dataclass(frozen=True)
class Case:
  kind: str  # config, data, episodes, checkpoint, workdir, ablate
  args: tuple  # command line; "{data}", "{inputs}" are filled in
  code: int  # the exit code
  expect: tuple = ()  # texts the error line must contain
  module: str = "main"
  workdir: str = "new"  # new | trained (a copy of a finished run) | file (a file in the way)


def C(kind, args, code, expect=(), **kw):
  return Case(kind, tuple(args), code, tuple(expect), **kw)


CASES = {
  # --- config: values, names, types, unknown fields, files ---
  "unknown_method": C(
    "config", [f"--config={SYN}:method=foo,smoke"], 2, ["'foo'", "alfa, cavia, gap, metasgd, mia"]
  ),
  "method_case": C("config", [SMOKE, "--config.method=MIA"], 2, ["'MIA'", "mia"]),
  "unknown_preset": C("config", [f"--config={SYN}:smok"], 2, ["'smok'", "smoke, cpu, full"]),
  "unknown_argument": C("config", [f"--config={SYN}:foo=1,smoke"], 2, ["'foo'", "inner_steps"]),
  "bad_int_argument": C(
    "config", [f"--config={SYN}:inner_steps=x,smoke"], 2, ["inner_steps='x'", "int"]
  ),
  "zero_batch_argument": C(
    "config", [f"--config={SYN}:batch_size=0,smoke"], 2, ["batch_size=0", ">= 1"]
  ),
  "negative_steps": C(
    "config", [SMOKE, "--config.num_train_steps=-5"], 2, ["num_train_steps=-5", ">= 1"]
  ),
  "zero_inner_steps": C("config", [SMOKE, "--config.inner_steps=0"], 2, ["inner_steps=0", ">= 1"]),
  "float_inner_steps": C(
    "config", [SMOKE, "--config.inner_steps=2.5"], 2, ["--config.inner_steps=2.5", "int"]
  ),
  "keep_no_checkpoints": C(
    "config", [SMOKE, "--config.keep_checkpoints=0"], 2, ["keep_checkpoints=0", ">= 1"]
  ),
  "negative_learning_rate": C(
    "config", [SMOKE, "--config.learning_rate=-1"], 2, ["learning_rate=-1", "> 0"]
  ),
  "nan_learning_rate": C(
    "config", [SMOKE, "--config.learning_rate=nan"], 2, ["learning_rate=nan", "finite"]
  ),
  "text_learning_rate": C(
    "config", [SMOKE, "--config.learning_rate=abc"], 2, ["--config.learning_rate=abc", "float"]
  ),
  "negative_grad_clip": C("config", [SMOKE, "--config.grad_clip=-1"], 2, ["grad_clip=-1", ">= 0"]),
  "negative_seed": C("config", [SMOKE, "--config.seed=-1"], 2, ["seed=-1", "[0, 2^32)"]),
  "bad_bool": C(
    "config", [SMOKE, "--config.first_order=maybe"], 2, ["--config.first_order=maybe", "boolean"]
  ),
  "zero_eval_batch": C(
    "config", [SMOKE, "--config.eval.batch_size=0"], 2, ["eval.batch_size=0", ">= 1"]
  ),
  "zero_checkpoint_every": C(
    "config", [SMOKE, "--config.checkpoint_every_steps=0"], 2, ["checkpoint_every_steps=0", ">= 1"]
  ),
  "zero_log_every": C(
    "config", [SMOKE, "--config.log_every_steps=0"], 2, ["log_every_steps=0", ">= 1"]
  ),
  "negative_test_signals": C(
    "config", [SMOKE, "--config.data.num_test_signals=-1"], 2, ["num_test_signals=-1", ">= 0"]
  ),
  "unknown_field": C("config", [SMOKE, "--config.xyz=1"], 2, ["config.xyz", "'xyz'"]),
  "misspelt_rule_field": C(
    "config", [SMOKE, "--config.rule.sft_widht=3"], 2, ["--config.rule.sft_widht", "'sft_width'"]
  ),
  "missing_config_file": C(
    "config", ["--config=experiments/configs/nope.py:smoke"], 2, ["nope.py", "does not exist"]
  ),
  "unknown_backbone": C(
    "config", [f"--config={SYN}:backbone=siren,smoke"], 2, ["'siren'", "composer, functa"]
  ),
  "unknown_ablation": C("config", [SMOKE, "--config.rule.ablation=foo"], 2, ["'foo'", "no_sft"]),
  "ablation_on_cavia": C(
    "config", [f"--config={SYN}:method=cavia,ablation=no_sft,smoke"], 2, ["mia"]
  ),
  "unknown_lr_position": C(
    "config", [SMOKE, "--config.rule.lr_position=mid"], 2, ["'mid'", "pre, post"]
  ),
  "zero_sft_width": C("config", [SMOKE, "--config.rule.sft_width=0"], 2, ["width", ">= 1"]),
  "zero_heads": C("config", [SMOKE, "--config.rule.num_heads=0"], 2, ["num_heads", ">= 1"]),
  "zero_hidden": C("config", [SMOKE, "--config.model.hidden=0"], 2, ["model.hidden=0", ">= 1"]),
  "two_layers": C(
    "config", [SMOKE, "--config.model.num_layers=2"], 2, ["model.num_layers=2", ">= 3"]
  ),
  "odd_ff_dim": C("config", [SMOKE, "--config.model.ff_dim=0"], 2, ["model.ff_dim=0", "even"]),
  "negative_latent_dim": C(
    "config", [SMOKE, "--config.model.latent_dim=-3"], 2, ["latent_dim=-3", ">= 1"]
  ),
  "zero_w0": C("config", [SMOKE, "--config.model.w0=0"], 2, ["model.w0=0", "> 0"]),
  "unknown_latent_map": C(
    "config", [SMOKE, "--config.model.latent_map=xx"], 2, ["'xx'", "none, ln_linear"]
  ),
  "bad_ff_sigmas": C(
    "config", [SMOKE, "--config.model.ff_sigmas=bogus"], 2, ["'bogus'", "name=sigma"]
  ),
  "ff_sigmas_unknown_modality": C(
    "config", [SMOKE, "--config.model.ff_sigmas=foo=2"], 2, ["'foo'", "sine, tanh, gaussian, relu"]
  ),
  "unknown_modality": C(
    "config",
    [f"--config={SYN}:modalities=sine+cosine,smoke"],
    2,
    ["'cosine'", "sine, tanh, gaussian, relu"],
  ),
  "modality_twice": C(
    "config", [f"--config={SYN}:modalities=sine+sine,smoke"], 2, ["twice", "sine+sine"]
  ),
  "no_modality": C("config", [f"--config={SYN}:modalities=,smoke"], 2, ["No modality"]),
  "batch_not_divisible": C(
    "config", [SMOKE, DATA, "--config.batch_size=3"], 2, ["batch_size=3", "devices (2)"]
  ),
  # --- data: datasets, directories, the user's arrays ---
  "unknown_dataset": C(
    "data", [SMOKE, "--config.data.name=nope"], 2, ["'nope'", "synthetic_functions"]
  ),
  "unknown_source": C("data", [SMOKE, "--config.data.source=foo"], 2, ["'foo'", "tfds, npz"]),
  "npz_source_without_files": C("data", [SMOKE, "--config.data.source=npz"], 2, ["npz_train"]),
  "own_field_on_benchmark": C(
    "data", [SMOKE, "--config.data.ratio_range=0.5"], 2, ["ratio_range='0.5'", "data.source='npz'"]
  ),
  "data_dir_under_a_file": C(
    "data",
    [SMOKE, "--config.data.data_dir={inputs}/file.txt/d"],
    2,
    ["--config.data.data_dir", "file.txt is not a directory"],
  ),
  "celeba_folder_missing": C(
    "data",
    ["--config=experiments/configs/celeba.py:smoke,data_dir={inputs}/none"],
    2,
    ["celeba_trimodal is missing or empty"],
  ),
  "npz_missing": C(
    "data",
    [f"--config={ARRAYS}:train={{inputs}}/nope.npz,test={{inputs}}/test.npz,smoke"],
    2,
    ["nope.npz"],
  ),
  "npz_corrupt": C(
    "data",
    [f"--config={ARRAYS}:train={{inputs}}/corrupt.npz,test={{inputs}}/test.npz,smoke"],
    2,
    ["corrupt.npz"],
  ),
  "npz_nan": C(
    "data",
    [f"--config={ARRAYS}:train={{inputs}}/nan.npz,test={{inputs}}/test.npz,smoke"],
    2,
    ["nan.npz", "'sig'", "finite"],
  ),
  "npz_grid_mismatch": C(
    "data",
    [f"--config={ARRAYS}:train={{inputs}}/train.npz,test={{inputs}}/grid.npz,smoke"],
    2,
    ["'img'", "(20, 30)", "(20, 31)", "grid.npz"],
  ),
  "npz_channel_mismatch": C(
    "data",
    [f"--config={ARRAYS}:train={{inputs}}/train.npz,test={{inputs}}/channels.npz,smoke"],
    2,
    ["'img'", "3 channels", "1 channels", "channels.npz"],
  ),
  "npz_test_lacks_modality": C(
    "data",
    [f"--config={ARRAYS}:train={{inputs}}/train.npz,test={{inputs}}/img_only.npz,smoke"],
    2,
    ["'sig'", "img_only.npz"],
  ),
  "npz_no_signals": C(
    "data",
    [f"--config={ARRAYS}:train={{inputs}}/empty.npz,test={{inputs}}/test.npz,smoke"],
    2,
    ["empty.npz", "'img'"],
  ),
  "npz_unknown_modality": C(
    "data",
    [f"--config={ARRAYS}:train={{inputs}}/train.npz,test={{inputs}}/test.npz,modalities=wav,smoke"],
    2,
    ["'wav'", "img", "sig"],
  ),
  "bad_ratio_range": C(
    "data",
    [
      f"--config={ARRAYS}:train={{inputs}}/train.npz,test={{inputs}}/test.npz,smoke",
      "--config.data.ratio_range=0.5",
    ],
    2,
    ["ratio_range", "'0.5'", "LO:HI"],
  ),
  "decreasing_ratio_bins": C(
    "data",
    [
      f"--config={ARRAYS}:train={{inputs}}/train.npz,test={{inputs}}/test.npz,smoke",
      "--config.data.ratio_bins=0:0.5:0.2",
    ],
    2,
    ["ratio_bins", "increasing"],
  ),
  # --- episode files ---
  "episodes_missing": C(
    "episodes",
    [SMOKE, DATA, "--config.eval.episodes_path={inputs}/no.npz"],
    2,
    ["no.npz", "does not exist"],
  ),
  "episodes_corrupt": C(
    "episodes",
    [SMOKE, DATA, "--config.eval.episodes_path={inputs}/file.txt"],
    2,
    ["file.txt", "Could not read"],
  ),
  "episodes_count_too_big": C(
    "episodes",
    [SMOKE, DATA, "--config.eval.episodes_path={inputs}/ep_count_big.npz"],
    2,
    ["sine/count", "[1, 20]", "[500]"],
  ),
  "episodes_count_negative": C(
    "episodes",
    [SMOKE, DATA, "--config.eval.episodes_path={inputs}/ep_count_neg.npz"],
    2,
    ["tanh/count", "[1, 20]"],
  ),
  "episodes_repeated_points": C(
    "episodes",
    [SMOKE, DATA, "--config.eval.episodes_path={inputs}/ep_repeat.npz"],
    2,
    ["gaussian", "distinct"],
  ),
  "episodes_ratio_above_one": C(
    "episodes",
    [SMOKE, DATA, "--config.eval.episodes_path={inputs}/ep_ratio.npz"],
    2,
    ["relu/ratio", "[0, 1]"],
  ),
  "episodes_lack_modality": C(
    "episodes",
    [SMOKE, DATA, "--config.eval.episodes_path={inputs}/ep_no_relu.npz"],
    2,
    ["relu/idx", "lacks"],
  ),
  "episodes_too_few_signals": C(
    "episodes",
    [SMOKE, DATA, "--config.eval.episodes_path={inputs}/ep_few.npz"],
    2,
    ["has 4 signals", "16"],
  ),
  # --- workdirs: reused, changed, lost or damaged ---
  "workdir_is_a_file": C("workdir", [SMOKE], 2, ["--workdir", "not a directory"], workdir="file"),
  "restart_other_seed": C(
    "workdir",
    [*TRAINED, "--config.seed=1"],
    2,
    ["seed: 0 != 1", "new --workdir"],
    workdir="trained",
  ),
  "restart_other_method": C(
    "workdir",
    [f"--config={SYN}:method=mia,smoke", *TRAINED[1:]],
    2,
    ["method: 'cavia' != 'mia'"],
    workdir="trained",
  ),
  "restart_other_inner_steps": C(
    "workdir", [*TRAINED, "--config.inner_steps=2"], 2, ["inner_steps: 3 != 2"], workdir="trained"
  ),
  "restart_other_learning_rate": C(
    "workdir",
    [*TRAINED, "--config.learning_rate=0.001"],
    2,
    ["learning_rate: 0.0001 != 0.001"],
    workdir="trained",
  ),
  "restart_new_log_interval": C(
    "workdir", [*TRAINED, "--config.log_every_steps=1"], 0, workdir="trained"
  ),
  "config_json_corrupt": C(
    "workdir",
    TRAINED,
    2,
    ["config.json", "is not readable JSON", "use a new --workdir"],
    workdir="trained:corrupt_config",
  ),
  "checkpoints_deleted": C(
    "checkpoint", TRAINED, 2, ["no checkpoint to resume"], workdir="trained:no_checkpoints"
  ),
  "checkpoint_corrupt": C(
    "checkpoint",
    TRAINED,
    1,
    ["Could not restore checkpoint step 4"],
    workdir="trained:corrupt_checkpoint",
  ),
  "diverging_run": C(
    "checkpoint",
    [
      f"--config={SYN}:method=cavia,smoke",
      DATA,
      "--config.learning_rate=1e30",
      "--config.checkpoint_every_steps=1",
    ],
    1,
    ["not finite at step", "last good checkpoint", "step 1"],
  ),
  # --- the ablation runner ---
  "unknown_study": C(
    "ablate", [SMOKE, "--study=nope"], 2, ["'nope'", "sft_removal"], module="ablate"
  ),
  "unknown_arm": C(
    "ablate", [SMOKE, "--study=sft_removal", "--arms=zzz"], 2, ["'zzz'", "no_sft"], module="ablate"
  ),
  "bad_grid_value": C(
    "ablate", [SMOKE, "--grid=inner_steps=0|1"], 2, ["inner_steps=0", ">= 1"], module="ablate"
  ),
  "grid_without_values": C(
    "ablate",
    [SMOKE, "--grid=inner_steps"],
    2,
    ["'inner_steps'", "key=value1|value2"],
    module="ablate",
  ),
  "grid_unknown_field": C(
    "ablate", [SMOKE, "--grid=foo=1|2"], 2, ["'foo'", "inner_steps"], module="ablate"
  ),
  "negative_study_steps": C(
    "ablate",
    [SMOKE, "--study=sft_removal", "--steps=-3"],
    2,
    ["--steps=-3", ">= 1"],
    module="ablate",
  ),
  "bad_seeds": C(
    "ablate",
    [SMOKE, "--study=sft_removal", "--seeds=abc"],
    2,
    ["--seeds=abc", "int"],
    module="ablate",
  ),
  "no_study_nor_grid": C("ablate", [SMOKE], 2, ["--study", "--grid"], module="ablate"),
  "study_and_grid": C(
    "ablate",
    [SMOKE, "--study=sft_removal", "--grid=inner_steps=1|2"],
    2,
    ["exactly one"],
    module="ablate",
  ),
  "archive_under_a_file": C(
    "ablate",
    [SMOKE, "--study=sft_removal", "--archive={inputs}/file.txt/a"],
    2,
    ["--archive", "not a directory"],
    module="ablate",
  ),
  "study_bad_data_dir": C(
    "ablate",
    [SMOKE, "--study=sft_removal", "--config.data.data_dir={inputs}/file.txt/d"],
    2,
    ["--config.data.data_dir", "not a directory"],
    module="ablate",
  ),
  "study_bad_episodes": C(
    "ablate",
    [SMOKE, DATA, "--study=sft_removal", "--config.eval.episodes_path={inputs}/ep_ratio.npz"],
    2,
    ["relu/ratio", "[0, 1]"],
    module="ablate",
  ),
}


# Cases known not to end in one clear line (none at present); they count against the sweep.
KNOWN_BAD = {}
