"""Driving video/frames + source portrait -> per-frame FLAME parameters (`track_driving`).

Face tracking and crop preparation run on the CPU in a worker thread (MediaPipe, skimage and
torch release the GIL), feeding a bounded queue; the encoders run batched on `device` meanwhile.
Frames without a face are counted and handled by `no_face` policy:
  * "hold"     — reuse the last valid frame's driving parameters (leading ones take the first
                 valid frame's); `valid` marks them False. Frame count is preserved.
  * "skip"     — drop them from the output (their indices are reported).
  * "upstream" — do what upstream does: DECA crops the whole 512 image, SMIRK the whole frame
                 (guidance_maps.md §1.2, §1.5); `valid` still marks them False.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.driving.driving_encoder import DrivingEncoder, EncoderInputs, prepare_encoder_inputs
from engine.driving.encoder_weights import EncoderPair, load_encoders, random_encoders
from engine.driving.face_tracker import LANDMARKER_FILE, FaceTracker, FaceTrackerConfig
from engine.driving.media import iter_driving_frames, video_fps
from engine.driving.mixing import FLAME_MODEL_NAME, mix_parameters
from engine.driving.one_euro import OneEuroConfig, smooth_sequence
from engine.driving.source_code import (
    SourceCode, encode_source_image, load_cached_source, save_cached_source, source_cache_key,
)
from engine.cache import cache_path
from engine.errors import InputError
from engine.io.images import read_rgb_image

NO_FACE_POLICIES = ("hold", "skip", "upstream")


def default_cache_dir() -> str:
    """<cache root>/sources (engine/cache.py: $MPRT_CACHE_DIR, else ~/.cache/mprt)."""
    return str(cache_path("sources"))


@dataclass(frozen=True)
class TrackingConfig:
    no_face: str = "hold"
    tracker_mode: str | None = None  # None: "video" for a video file, "image" for a frame folder
    batch_size: int = 8
    max_frames: int | None = None
    folder_fps: float = 25.0  # frame rate assumed for a folder of frames
    smoothing: OneEuroConfig | None = None  # One-Euro on pose/exp/jaw; None = upstream (none)
    device: str = "cpu"
    cache_dir: str | None = None  # None: default_cache_dir(); "" disables the source cache
    queue_frames: int = 16
    # CPU threads for the encoders while tracking runs beside them (None: leave torch's setting).
    # On small CPUs all-but-one avoids OpenMP threads spinning against the tracking worker.
    torch_threads: int | None = None


@dataclass
class TrackingResult:
    params: object  # engine.flame.FlameParams
    frame_count: int  # frames read from the driving input
    no_face_frames: list[int]  # indices (into the input) of frames without a face
    source_from_cache: bool
    stage_seconds: dict[str, float] = field(default_factory=dict)
    fps: float = 25.0


def resolve_landmarker(landmarker: str | os.PathLike | None, weights_dir: str | os.PathLike | None) -> str:
    if landmarker is not None:
        return os.fspath(landmarker)
    if weights_dir is not None and os.path.isfile(os.path.join(weights_dir, LANDMARKER_FILE)):
        return os.path.join(os.fspath(weights_dir), LANDMARKER_FILE)
    raise InputError(
        f"no face landmarker model: pass --landmarker PATH/{LANDMARKER_FILE} (or put it in the weights folder)"
    )


def encode_source(source_image: str | os.PathLike, landmarker: str, encoders: EncoderPair,
                  cache_dir: str | None) -> tuple[SourceCode, bool]:
    """Source constants, from the cache when this image was encoded before with these encoders."""
    source_image = os.fspath(source_image)
    image = read_rgb_image(source_image)  # validates the file before any hashing/caching
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    key = source_cache_key(source_image, encoders, landmarker) if cache_dir else None
    if key is not None:
        cached = load_cached_source(cache_dir, key)
        if cached is not None:
            return cached, True
    with FaceTracker(FaceTrackerConfig(landmarker, mode="image")) as tracker:
        code = encode_source_image(image, tracker, encoders, name=f"source image {source_image}")
    if key is not None:
        save_cached_source(cache_dir, key, code)
    return code, False


def _track_worker(frames, tracker_config: FaceTrackerConfig, policy: str, out: queue.Queue,
                  stop: threading.Event, timing: dict) -> None:
    try:
        with FaceTracker(tracker_config) as tracker:
            for frame in frames:
                if stop.is_set():
                    return
                t0 = time.perf_counter()
                track = tracker.track(frame.rgb, frame.timestamp_ms)
                t1 = time.perf_counter()
                encode = track is not None or policy == "upstream"
                inputs = prepare_encoder_inputs(frame.rgb, track) if encode else None
                timing["tracking"] += t1 - t0
                timing["crops"] += time.perf_counter() - t1
                out.put((frame.index, track is not None, inputs))
        out.put(None)
    except BaseException as err:  # handed to the consumer, which re-raises it
        out.put(err)


def _held_rows(valid: np.ndarray) -> np.ndarray:
    """Row to use per frame: itself if valid, else the last valid frame before it (leading
    invalid frames: the first valid one)."""
    rows = np.maximum.accumulate(np.where(valid, np.arange(len(valid)), -1))
    rows[rows < 0] = np.flatnonzero(valid)[0]
    return rows


def _apply_no_face_policy(results: dict[int, dict[str, np.ndarray]], valid: np.ndarray, policy: str
                          ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-frame encoder outputs -> (F', ...) arrays and the `valid` mask after the policy."""
    if policy == "skip":
        rows = np.flatnonzero(valid)
        valid = valid[rows]
    elif policy == "hold":
        rows = _held_rows(valid)
    else:  # "upstream": every frame was encoded (whole-frame crops where no face was found)
        rows = np.arange(len(valid))
    arrays = {k: np.stack([results[int(i)][k] for i in rows]) for k in ("pose", "exp", "jaw")}
    return arrays, valid


def _encode_while_tracking(frames, tracker_config: FaceTrackerConfig, encoder: DrivingEncoder,
                           config: TrackingConfig, timing: dict) -> tuple[dict, np.ndarray]:
    """Worker thread tracks + crops; this thread encodes in batches. -> (outputs by index, has_face)."""
    results: dict[int, dict[str, np.ndarray]] = {}
    has_face: dict[int, bool] = {}
    pending: list[tuple[int, EncoderInputs]] = []

    def flush() -> None:
        t = time.perf_counter()
        encoded = encoder.encode([inp for _, inp in pending])
        for row, (index, _) in enumerate(pending):
            results[index] = {k: v[row] for k, v in encoded.items()}
        pending.clear()
        timing["encoders"] += time.perf_counter() - t

    items: queue.Queue = queue.Queue(maxsize=config.queue_frames)
    stop = threading.Event()
    worker = threading.Thread(
        target=_track_worker, args=(frames, tracker_config, config.no_face, items, stop, timing),
        name="mprt-face-tracking", daemon=True,
    )
    threads_before = torch.get_num_threads()
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    worker.start()
    try:
        while (item := items.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            index, face, inputs = item
            has_face[index] = face
            if inputs is not None:
                pending.append((index, inputs))
                if len(pending) >= config.batch_size:
                    flush()
        if pending:
            flush()
    finally:
        torch.set_num_threads(threads_before)
        stop.set()
        while worker.is_alive():  # unblock a worker waiting on a full queue
            try:
                items.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
    return results, np.array([has_face[i] for i in range(len(has_face))], dtype=bool)


def track_driving_detailed(driving: str | os.PathLike, source_image: str | os.PathLike,
                           weights_dir: str | os.PathLike | None = None, *,
                           landmarker: str | os.PathLike | None = None, random_weights: bool = False,
                           encoders: EncoderPair | None = None,
                           config: TrackingConfig = TrackingConfig(), frame_encoder=None) -> TrackingResult:
    """`track_driving` plus what happened: frame count, no-face frame indices, stage times.
    frame_encoder: the per-frame encoder (`encode(inputs)`); None = the torch DrivingEncoder."""
    if config.no_face not in NO_FACE_POLICIES:
        raise InputError(f"no-face policy must be one of {', '.join(NO_FACE_POLICIES)}, got {config.no_face!r}")
    if config.torch_threads is not None and config.torch_threads < 1:
        raise InputError(f"torch threads must be >= 1, got {config.torch_threads}")
    if config.batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {config.batch_size}")
    landmarker = resolve_landmarker(landmarker, weights_dir)
    if encoders is None:
        encoders = random_encoders() if random_weights else load_encoders(weights_dir)
    timing = {"tracking": 0.0, "crops": 0.0, "encoders": 0.0, "source": 0.0}

    t0 = time.perf_counter()
    source, from_cache = encode_source(source_image, landmarker, encoders, config.cache_dir)
    timing["source"] = time.perf_counter() - t0

    driving = os.fspath(driving)
    is_folder = os.path.isdir(driving)
    frames = iter_driving_frames(driving, config.folder_fps, config.max_frames)
    fps = config.folder_fps if is_folder else video_fps(driving)
    tracker_config = FaceTrackerConfig(landmarker, mode=config.tracker_mode or ("image" if is_folder else "video"),
                                       fps=fps)
    encoder = frame_encoder or DrivingEncoder(encoders, config.device)
    results, valid = _encode_while_tracking(frames, tracker_config, encoder, config, timing)
    count = len(valid)
    no_face = [int(i) for i in np.flatnonzero(~valid)]
    if count == 0:
        raise InputError(f"driving input {driving} gave no frames")
    if not valid.any() and config.no_face != "upstream":
        raise InputError(f"no face found in any of the {count} frames of {driving}")

    arrays, valid = _apply_no_face_policy(results, valid, config.no_face)
    if config.smoothing is not None:
        arrays = {k: smooth_sequence(v, fps, config.smoothing) for k, v in arrays.items()}
    model = FLAME_MODEL_NAME + (" from RANDOM encoder weights" if encoders.random else "")
    params = mix_parameters(source, arrays["pose"], arrays["exp"], arrays["jaw"], valid, model)
    return TrackingResult(params, count, no_face, from_cache, timing, fps)


def track_driving(driving: str | os.PathLike, source_image: str | os.PathLike,
                  weights_dir: str | os.PathLike | None = None, **kwargs):
    """Driving video (or frame folder) + source portrait -> `engine.flame.FlameParams`.

    Keyword arguments as `track_driving_detailed` (landmarker=, random_weights=, encoders=, config=).
    """
    return track_driving_detailed(driving, source_image, weights_dir, **kwargs).params
