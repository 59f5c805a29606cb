"""The frame-scoring engine: the one place where frames become scores.

    engine = ScoreEngine(protocol, backend, T, batch_size=16, gain=gain)
    raw, maps = engine.score_video(video)       # a whole (N, H, W, C) uint8 video
    s = engine.session()                        # or frames pushed one by one:
    s.push(frame); s.run() if s.ready() ...; s.finish()   -> ``Scored`` per frame, in order
    alert = engine.pipeline.alert(raw)          # post-processing (``ddlvad.scoring.post``)

Each frame goes through, in order: the brightness gain (``score.gain``), the T-window centred
on it (``SlidingWindow``: edge frames by the edge rule), the backend's forward (``clip``:
the network on each window, torch or onnxruntime; ``stream``: each frame encoded once and
reused by every window, C3DSU only), the error map and the patch max; under the ``copy``
rule the edge frames then take the nearest full window's score and error map. Under
``score.stride`` k > 1 only every k-th window goes through the network; the frames between
two scored ones take the linear mix of their scores and error maps.

Both modes share every step: ``score_video`` pushes the frames through a session, batching
the windows in order (``batch_size`` at a time) as a session fed frame by frame does, and
calibrates the brightness of the whole video at once (``Gain.video``, equal frame by frame
to ``Gain.stream``). ``ddlvad test``, the threshold calibration, ``Detector`` (``predict``,
live) and export's check all score here; ``engine_for_run`` adds a run's own calibration
data (its training brightness).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ddlvad.data.clips import to_tensor
from ddlvad.scoring import threads
from ddlvad.scoring.backends import Backend
from ddlvad.scoring.frame import error_map, patch_max
from ddlvad.scoring.gain import Gain, gain_for_run
from ddlvad.scoring.post import ScorePipeline
from ddlvad.scoring.protocol import ScoreProtocol, check_patch
from ddlvad.scoring.window import SlidingWindow

Window = tuple[int, list[int]]  # (centre frame, the T frame indices of its clip)


class Scored(NamedTuple):
    index: int  # frame index in the stream (0-based, in push order)
    raw: float  # patch-max score
    error: np.ndarray | None  # (H, W) error map when kept
    meta: Any  # whatever was pushed with the frame


class ClipForward:
    """Each window's T frames as one clip through the backend: (B, C, T, H, W) -> (B, C, H, W)."""

    def __init__(self, backend: Backend, T: int) -> None:
        self.backend, self.t = backend, T // 2

    def __call__(
        self, batch: list[Window], frames: dict[int, np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(X^t, f(X)), both (B, C, H, W)."""
        X = torch.stack([to_tensor([frames[i] for i in ids]) for _, ids in batch])
        return X[:, :, self.t], self.backend(X)  # X: (B, C, T, H, W)

    def evict(self, low: int) -> None:
        """Nothing cached per frame."""


class StreamForward:
    """The stream engine: each frame encoded once (``backend.encode``) and its features
    reused in every window that holds it; ``backend.head`` per window."""

    def __init__(self, backend: Backend, T: int) -> None:
        self.backend, self.t = backend, T // 2
        self.feats: dict[int, list[torch.Tensor]] = {}

    def __call__(
        self, batch: list[Window], frames: dict[int, np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(X^t, f(X)), both (B, C, H, W)."""
        feats = self.feats
        new = sorted({i for _, ids in batch for i in ids} - feats.keys())
        if new:
            x = to_tensor([frames[i] for i in new]).transpose(0, 1)  # (N, C, H, W)
            enc = self.backend.encode(x)
            for k, i in enumerate(new):
                feats[i] = [f[k] for f in enc]
        levels = len(feats[batch[0][1][0]])
        stacked = [  # per level (B, c, T, h, w)
            torch.stack([torch.stack([feats[i][lv] for i in ids], 1) for _, ids in batch])
            for lv in range(levels)
        ]
        x_t = to_tensor([frames[ids[self.t]] for _, ids in batch]).transpose(0, 1)
        return x_t, self.backend.head(stacked)

    def evict(self, low: int) -> None:
        for k in [k for k in self.feats if k < low]:
            del self.feats[k]


class ScoreEngine:
    """One protocol, one backend, clip length T: frames in, one raw score per frame out.

    ``stream`` picks the stream engine where the backend has one (else whole clips);
    ``mode`` says which runs. ``gain`` (the run's, ``gain_for_run``) is needed when the
    protocol's ``gain`` is on."""

    def __init__(
        self,
        protocol: ScoreProtocol,
        backend: Backend,
        T: int,
        *,
        batch_size: int = 16,
        gain: Gain | None = None,
        stream: bool = False,
    ) -> None:
        if bool(protocol.gain) != (gain is not None) or (gain and gain.window != protocol.gain):
            raise ValueError(
                f"score.gain = {protocol.gain} needs the run's Gain with that window "
                f"(gain_for_run), got {gain}"
            )
        if batch_size < 1:
            raise ValueError(f"score.batch_size must be >= 1, got {batch_size}")
        self.protocol, self.backend, self.T = protocol, backend, T
        self.batch_size, self.gain = batch_size, gain
        # T = 1 (UNet): each frame is its own window, nothing to reuse
        self.mode = "stream" if stream and backend.streams else "clip"
        self.pipeline = ScorePipeline(protocol)

    def session(self, keep_maps: bool = False, mask: np.ndarray | None = None) -> Session:
        """A stream of frames, pushed one by one (``Session``); ``mask``: (H, W) weights
        the error map is multiplied by before the patch max (0 = an area to ignore)."""
        return Session(self, keep_maps, mask=mask)

    def score_frames(
        self, frames: Iterable[np.ndarray], keep_maps: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw scores (N,) float32 of N working-size (H, W, C) uint8 frames of one video, in
        order, and their (N, H, W) error maps when ``keep_maps``."""
        return self._drain(self.session(keep_maps), frames)

    def score_video(
        self, video: np.ndarray, keep_maps: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``score_frames`` of a whole (N, H, W, C) uint8 video, its brightness calibrated
        at once."""
        if self.gain is None:
            return self.score_frames(video, keep_maps)
        return self._drain(Session(self, keep_maps, gain=False), self.gain.video(video))

    def _drain(
        self, s: Session, frames: Iterable[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        out: list[Scored] = []
        for frame in frames:
            s.push(frame)
            if s.ready():
                out += s.run()
        out += s.finish()
        raw = np.array([r.raw for r in out], dtype=np.float32)
        return raw, (np.stack([r.error for r in out]) if s.keep and out else None)

    def frame_scores(
        self, x_t: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) patch-max scores and (B, H, W) error maps of (X^t, f(X)), both (B, C, H, W);
        ``mask`` (H, W) weighs the error map first."""
        err = error_map(x_t.to(y.device), y, self.protocol.power)  # (B, H, W)
        if mask is not None:
            err = err * mask.to(err.device, err.dtype)
        return patch_max(err, self.protocol.patch, self.protocol.shifted), err


class Session:
    """Frames pushed one by one; ``run`` scores batches of the windows they complete; each
    frame's ``Scored`` comes out in order, T//2 frames after it was pushed (plus the batch)."""

    def __init__(
        self,
        engine: ScoreEngine,
        keep_maps: bool = False,
        gain: bool = True,
        mask: np.ndarray | None = None,
    ) -> None:
        self.engine, self.keep = engine, keep_maps
        self.mask = None if mask is None else torch.from_numpy(np.asarray(mask, np.float32))
        p = engine.protocol
        self.window = SlidingWindow(engine.T, p.edge)
        self.gain = engine.gain.stream() if gain and engine.gain is not None else None
        fwd = StreamForward if engine.mode == "stream" else ClipForward
        self.forward = fwd(engine.backend, engine.T)
        self.frames: dict[int, np.ndarray] = {}
        self.meta: dict[int, Any] = {}
        self.pending: deque[Window] = deque()
        self.todo = 0  # pending windows the network scores (``stride``)
        self.done = False  # the stream has ended (``finish``)
        self.last: Scored | None = None

    def push(self, frame: np.ndarray, meta: Any = None) -> None:
        """Add one (H, W, C) uint8 working-size frame."""
        i = self.window.n
        if i == 0:
            p = self.engine.protocol
            check_patch(p.patch, frame.shape[0], frame.shape[1], p.shifted)
            if self.mask is not None and self.mask.shape != frame.shape[:2]:
                raise ValueError(f"mask {tuple(self.mask.shape)} != frame {frame.shape[:2]}")
        if self.gain is not None:
            frame = self.gain.push(frame)
        self.frames[i], self.meta[i] = frame, meta
        for w in self.window.push():
            self.pending.append(w)
            self.todo += self._scores(w[0])

    def _scores(self, c: int) -> bool:
        """Whether the network scores frame ``c`` (``stride``: else it holds the last score);
        the first window always is."""
        k = self.engine.protocol.stride
        return k == 1 or c % k == 0 or (c == self.window.r and self.window.edge == "copy")

    def ready(self) -> bool:
        """A full batch of windows to score waits."""
        return self.todo >= self.engine.batch_size

    def run(self) -> list[Scored]:
        """Score up to one batch of pending windows (a partial batch when fewer wait) and
        emit them with the frames between them (``stride``: linear in between)."""
        batch = self._take()
        scored = [w for w in batch if self._scores(w[0])]
        results = dict(zip((c for c, _ in scored), self._forward(scored), strict=True))
        out: list[Scored] = []
        gap: list[int] = []  # frames between the last scored frame and the next
        for c, _ in batch:
            if c not in results:
                gap.append(c)
                continue
            raw, e = results[c]
            out += self._bridge(gap, c, raw, e)
            gap = []
            if c == self.window.r and self.window.edge == "copy":  # the left edge frames
                out += [self._scored(j, raw, e) for j in range(c)]
            out.append(self._scored(c, raw, e))
            self.last = out[-1]
        if gap:  # end of stream: no scored frame follows, they hold the last score
            out += [self._scored(j, self.last.raw, self.last.error) for j in gap]
            self.last = out[-1]
        self._evict()
        return out

    def _take(self) -> list[Window]:
        """Up to one batch of windows to score, in order, with the frames between them; the
        frames after the last one wait for the next scored frame (until the stream ends)."""
        batch: list[Window] = []
        n = 0
        while self.pending and n < self.engine.batch_size:
            batch.append(self.pending.popleft())
            n += self._scores(batch[-1][0])
        while not self.done and batch and not self._scores(batch[-1][0]):
            self.pending.appendleft(batch.pop())
        self.todo -= n
        return batch

    def _bridge(self, gap: list[int], c: int, raw: float, e: np.ndarray | None) -> list[Scored]:
        """The frames ``gap`` between the last scored frame and ``c``: score (and error map)
        linear between the two."""
        a, out = self.last, []
        for j in gap:
            w = (j - a.index) / (c - a.index)
            mix = None if e is None else ((1 - w) * a.error + w * e).astype(e.dtype)
            out.append(self._scored(j, (1 - w) * a.raw + w * raw, mix))
        return out

    def _forward(self, batch: list[Window]) -> list[tuple[float, np.ndarray | None]]:
        """(raw score, error map when kept) of each window of ``batch`` through the network."""
        if not batch:
            return []
        threads.tick()  # the thread count follows the load (when governed)
        with torch.inference_mode():
            s, err = self.engine.frame_scores(*self.forward(batch, self.frames), self.mask)
        s = s.float().cpu().numpy()
        errs = err.float().cpu().numpy() if self.keep else [None] * len(batch)
        return [(float(r), e) for r, e in zip(s, errs, strict=True)]

    def finish(self) -> list[Scored]:
        """End of stream: score everything left, then the right-edge frames."""
        self.pending.extend(self.window.finish())
        self.done = True
        out = []
        while self.pending:
            out += self.run()
        if self.last is not None:  # copy rule: the right edge frames (none under clamp)
            e, raw = self.last.error, self.last.raw
            out += [self._scored(j, raw, e) for j in range(self.last.index + 1, self.window.n)]
        return out

    def _scored(self, j: int, raw: float, e: np.ndarray | None) -> Scored:
        return Scored(j, raw, e, self.meta.pop(j, None))

    def _evict(self) -> None:
        low = min([ids[0] for _, ids in self.pending] + [self.window.next - self.window.r])
        low = min(low, self.window.n - 1)  # the last frame stays: the right edge needs it
        for k in [k for k in self.frames if k < low]:
            del self.frames[k]
        self.forward.evict(low)


def engine_for_run(
    run_dir: str | Path,
    protocol: ScoreProtocol,
    backend: Backend,
    T: int,
    *,
    batch_size: int = 16,
    stream: bool = False,
) -> ScoreEngine:
    """The engine of a run under ``protocol``, with the run's own calibration data (the
    training footage's brightness, for ``gain``)."""
    gain = gain_for_run(run_dir, protocol)
    return ScoreEngine(protocol, backend, T, batch_size=batch_size, gain=gain, stream=stream)
