"""TensorBoard event files of a run, written and read back without TensorFlow."""

import os
import sys

import numpy as np
import pytest

from experiments.configs import synthetic
from experiments.run import events, train


@pytest.mark.slow  # trains
def test_run_writes_scalars_and_the_reconstruction_figure(tmp_path, synthetic_data_dir):
  from tensorboard.backend.event_processing import event_accumulator

  config = synthetic.get_config("method=cavia,smoke")
  config.data.data_dir = synthetic_data_dir
  config.data.num_test_signals = 8
  config.num_train_steps = 4
  config.log_reconstructions = 2
  w = str(tmp_path)
  results = train.train_and_evaluate(config, w)
  assert os.path.isfile(os.path.join(w, "reconstructions.png"))
  acc = event_accumulator.EventAccumulator(w, size_guidance={"images": 0, "scalars": 0})
  acc.Reload()
  tags = acc.Tags()
  # Training scalars at every logging step (log_every_steps=2), as in metrics.jsonl.
  loss = acc.Scalars("train/loss")
  assert [e.step for e in loss] == [2, 4]
  logged = [l for l in open(os.path.join(w, "metrics.jsonl")) if '"loss"' in l]
  import json

  np.testing.assert_allclose(
    [e.value for e in loss], [json.loads(l)["loss"] for l in logged], rtol=1e-6
  )
  assert "train/query_mse/sine" in tags["scalars"]
  # The meta-test metrics after K steps, equal to results.json.
  key = "generalization_mse/avg/step3"
  (final,) = acc.Scalars("test/" + key)
  assert final.step == 4
  np.testing.assert_allclose(final.value, results["metrics"][key], rtol=1e-6)
  (image,) = acc.Images("test/reconstructions")
  with open(os.path.join(w, "reconstructions.png"), "rb") as f:
    assert image.encoded_image_string == f.read()
  assert "tensorflow" not in sys.modules or not hasattr(sys.modules["tensorflow"], "Session")


def test_event_writer_png_size_and_bad_image(tmp_path):
  import pytest

  png = (
    b"\x89PNG\r\n\x1a\n"
    + b"\x00\x00\x00\rIHDR"
    + (7).to_bytes(4, "big")
    + (5).to_bytes(4, "big")
    + b"\x08\x02\x00\x00\x00"
  )
  assert events._png_size(png) == (5, 7)
  writer = events.EventWriter(str(tmp_path))
  with pytest.raises(ValueError, match="not a PNG"):
    writer.image(0, "x", b"GIF89a")
  writer.scalars(1, {"a": 1.0, "nan": float("nan"), "text": "x"})
  writer.close()
  from tensorboard.backend.event_processing import event_accumulator

  acc = event_accumulator.EventAccumulator(str(tmp_path))
  acc.Reload()
  assert acc.Tags()["scalars"] == ["a"]  # non-finite and non-numeric values are left out
