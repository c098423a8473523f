"""TensorBoard event files of a run, written without TensorFlow.

`EventWriter(workdir)` writes `events.out.tfevents.*` into the run's workdir, beside
`metrics.jsonl`, with the `tensorboard` package's own event-file writer and protos (no
TensorFlow import). The driver logs the training scalars (`train/...`) at every logging step,
the periodic evaluation (`eval/...`), the final meta-test metrics (`test/...`) and the
reconstruction figure (`test/reconstructions`). Open them with

    tensorboard --logdir=WORKDIR     (a study's workdir shows every run)
"""

from __future__ import annotations

import os
import struct
import time
from typing import Mapping

import numpy as np


def _png_size(png: bytes) -> tuple[int, int]:
  """(height, width) from a PNG's IHDR chunk."""
  if png[:8] != b"\x89PNG\r\n\x1a\n":
    raise ValueError("not a PNG image")
  width, height = struct.unpack(">II", png[16:24])
  return height, width


class EventWriter:
  """Scalars and PNG images as TensorBoard events in `logdir`."""

  def __init__(self, logdir: str):
    # imported on use: tensorboard, only when a run logs events
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    self._event, self._summary = event_pb2.Event, summary_pb2.Summary
    os.makedirs(logdir, exist_ok=True)
    self._writer = EventFileWriter(logdir)
    self.logdir = logdir

  def _add(self, step: int, values) -> None:
    self._writer.add_event(
      self._event(wall_time=time.time(), step=int(step), summary=self._summary(value=values))
    )

  def scalars(self, step: int, values: Mapping[str, float], prefix: str = "") -> None:
    """Logs every finite number of `values` as a scalar `prefix + key`."""
    out = [
      self._summary.Value(tag=prefix + k, simple_value=float(v))
      for k, v in values.items()
      if isinstance(v, (int, float, np.number)) and np.isfinite(v)
    ]
    if out:
      self._add(step, out)

  def image(self, step: int, tag: str, png: bytes) -> None:
    """Logs a PNG image (e.g. a figure saved by matplotlib)."""
    height, width = _png_size(png)
    image = self._summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
    self._add(step, [self._summary.Value(tag=tag, image=image)])

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()
