"""Driving from real video and webcam: face tracking, DECA/SMIRK encoders, parameter mixing.

Public API (heavy modules are imported lazily by the submodules that need them):
  track_driving(driving, source_image, weights_dir=None, *, landmarker=None, random_weights=False,
                encoders=None, config=TrackingConfig()) -> FlameParams
  FaceTracker(FaceTrackerConfig(model_path, mode="video")).track(frame_rgb_u8, timestamp_ms=None) -> Track | None
  prepare_encoder_inputs(frame_rgb_u8, track) -> EncoderInputs
  DrivingEncoder(encoders, device).encode([EncoderInputs, ...]) -> {"pose", "exp", "jaw"}
  load_encoders(weights_dir) / random_encoders(seed) -> EncoderPair
  encode_source(source_image, landmarker, encoders, cache_dir) -> (SourceCode, from_cache)
  mix_parameters(source, global_rot, exp, jaw, valid=None) -> FlameParams
"""
from engine.driving.driving_encoder import DrivingEncoder, EncoderInputs, prepare_encoder_inputs
from engine.driving.encoder_weights import EncoderPair, load_encoders, random_encoders
from engine.driving.face_tracker import FaceTracker, FaceTrackerConfig, Track
from engine.driving.mixing import mix_parameters
from engine.driving.one_euro import OneEuroConfig, OneEuroFilter
from engine.driving.pipeline import TrackingConfig, TrackingResult, encode_source, track_driving, track_driving_detailed
from engine.driving.source_code import SourceCode

__all__ = [
    "DrivingEncoder", "EncoderInputs", "EncoderPair", "FaceTracker", "FaceTrackerConfig", "OneEuroConfig",
    "OneEuroFilter", "SourceCode", "Track", "TrackingConfig", "TrackingResult", "encode_source",
    "load_encoders", "mix_parameters", "prepare_encoder_inputs", "random_encoders", "track_driving",
    "track_driving_detailed",
]
