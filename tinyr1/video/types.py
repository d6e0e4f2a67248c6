"""The public types of tinyr1.video: ``VideoError``, ``VideoLimits`` (with the decoded-pixel
budget), ``VideoMeta``, ``Frames``, the paper's ``sample_indices``, and the argument checks.

Import them from ``tinyr1.video`` (the package re-exports every name here that callers use).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tinyr1.limits import DECODED_PIXELS

BACKENDS = ("auto", "decord", "pyav")
SEEK_MODES = ("exact", "keyframe")


class VideoError(ValueError):
    """Bad video input (missing, unreadable, truncated, over the limits...): the one error type."""


#: The environment variable that sets the default decoded-pixel budget (VideoLimits.max_decoded_pixels):
#: tinyr1.limits.DECODED_PIXELS, where every public limit is defined.
BUDGET_ENV = DECODED_PIXELS.env
#: Its default: 100M pixels, 300 MB of RGB frames per call. 16 frames of 1080p (33M pixels) fit
#: unchanged; 64 frames of 8K (2.3G pixels, 6.8 GB) are shrunk to 1.56M pixels each.
DEFAULT_MAX_DECODED_PIXELS = DECODED_PIXELS.default
#: Frames are shrunk towards ``target_size`` only when their short side is over this many times
#: it, and then to this many times it (see _plan_resize).
DECODE_MARGIN = 2
#: The budget never shrinks frames below this many pixels on their short side: it refuses instead.
MIN_DECODED_SIDE = 16


def _budget_from_env() -> int:
    try:
        return DECODED_PIXELS.value  # read at each call: a launcher or test may set the variable late
    except ValueError as exc:  # a malformed variable is bad input to load_frames, like a bad argument
        raise VideoError(str(exc)) from None


@dataclass(frozen=True)
class VideoLimits:
    """What ``load_frames`` accepts; anything over a limit is a ``VideoError`` before decoding.

    Defaults, and why:
      max_bytes = 2 GiB          a long 1080p video; larger files are rarely QA clips
      max_seconds = 3600         an hour: uniform sampling of 16 frames over more says little
      max_side = 8192            8K (7680x4320 UHD, 8192x4320 DCI) passes, larger is suspicious
      max_pixels = 8192 * 4320   one 8K frame; a frame buffer stays < 110 MB in RGB
      max_frames = 256           frames asked per call (the paper uses 16; 256 x 8K would be ~27 GB)
      max_decode_seconds = 120   wall-clock guard on the PyAV decode loop (decord cannot be cut: it
                                 only gets files that PyAV probed, in containers and codecs it knows)
      max_decoded_pixels         all frames of one call together, after decoding: 100M pixels by
                                 default (tinyr1.limits.DECODED_PIXELS, env TINYR1_MAX_DECODED_PIXELS);
                                 larger frames are shrunk while decoding (aspect kept), so 64
                                 frames of 8K hold 300 MB instead of 6.8 GB (see load_frames)
    """

    max_bytes: int = 2 * 1024**3
    max_seconds: float = 3600.0
    max_side: int = 8192
    max_pixels: int = 8192 * 4320
    max_frames: int = 256
    max_decode_seconds: float = 120.0
    max_decoded_pixels: int = field(default_factory=_budget_from_env)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"VideoLimits.{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class VideoMeta:
    """What the video is. ``width``/``height``: upright size of the source (rotation applied);
    ``num_frames``: the frame count sampling used; ``duration`` in seconds; ``rotation`` in
    degrees counter-clockwise as stored in the file (0, 90, 180 or 270); ``mirrored``: the file
    also asks for the rotated frame to be mirrored left-right (both are applied to the frames);
    ``backend``: the one that decoded the frames ("decord" or "pyav")."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    codec: str
    container: str
    rotation: int
    backend: str
    mirrored: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Frames:
    """Sampled frames: ``frames`` uint8 [N, H, W, 3] RGB; per frame its index in the video and its
    presentation time in seconds; ``meta`` describes the video."""

    frames: np.ndarray
    indices: list[int]
    timestamps: list[float]
    meta: VideoMeta

    def __len__(self) -> int:
        return len(self.indices)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the pixels (what ``tinyr1 frames --json`` prints)."""
        h, w = self.frames.shape[1:3] if self.frames.ndim == 4 else (0, 0)
        return {"indices": list(self.indices), "timestamps": [round(t, 6) for t in self.timestamps],
                "frame_size": [int(h), int(w)], "meta": self.meta.to_dict()}


def sample_indices(total: int, num_frames: int) -> list[int]:
    """The paper's uniform sampling: ``linspace(0, total - 1, num_frames)`` truncated to ints.

    >>> sample_indices(100, 5)
    [0, 24, 49, 74, 99]
    >>> sample_indices(3, 5)   # fewer frames than asked: indices repeat
    [0, 0, 1, 1, 2]
    """
    if total < 1 or num_frames < 1:
        raise ValueError(f"need total >= 1 and num_frames >= 1, got {total} and {num_frames}")
    return [int(i) for i in np.linspace(0, total - 1, num_frames, dtype=int)]


# --------------------------------------------------------------------------------------------
# Argument checks (before the file is opened)

def _check_args(num_frames: Any, size: Any, backend: Any, seek: Any, limits: VideoLimits) -> tuple[int, int] | None:
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)):
        raise VideoError(f"num_frames must be a whole number, got {num_frames!r}")
    if num_frames < 1:
        raise VideoError(f"num_frames must be at least 1, got {num_frames}")
    if num_frames > limits.max_frames:
        raise VideoError(f"num_frames={num_frames} is over the limit of {limits.max_frames} frames per call "
                         f"(raise VideoLimits.max_frames if you really need more)")
    if backend not in BACKENDS:
        raise VideoError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if seek not in SEEK_MODES:
        raise VideoError(f"seek must be one of {', '.join(SEEK_MODES)}; got {seek!r}")
    if size is None:
        return None
    pair = (size, size) if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else size
    try:
        h, w = (int(v) for v in pair)
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
    except (TypeError, ValueError):
        ok = False
    if not ok or not (0 < h <= limits.max_side and 0 < w <= limits.max_side):
        raise VideoError(f"size must be an int or (height, width) of ints in 1..{limits.max_side}; got {size!r}")
    return h, w


def _check_target(target: Any, limits: VideoLimits) -> int | None:
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 < target <= limits.max_side:
        raise VideoError(f"target_size must be an int in 1..{limits.max_side} (the side of the model's square "
                         f"input); got {target!r}")
    return int(target)
