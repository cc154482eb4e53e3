"""TensorRT backend: imports without torch (checked in a subprocess with torch blocked). Its logic on
emulated CUDA and its real run on a GPU are in test_backends_ort.py (they reuse that ONNX export)."""
import subprocess
import sys

import pytest

BLOCK_TORCH = "import sys; sys.modules['torch'] = None\n"


@pytest.mark.parametrize("module", ["engine.backends.trt_backend", "engine.backends.registry", "engine.runtime.runner",
                                    "engine.runtime.driving_source", "engine.runtime.sinks"])
def test_tensorrt_path_imports_no_torch(module):
    code = BLOCK_TORCH + f"import {module}\nassert sys.modules.get('torch') is None\nprint('ok')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_runtime_runs_torch_free_on_a_numpy_backend():
    """The whole streaming loop (sampler, noise, stats) with torch blocked, on the frame-local backend."""
    code = BLOCK_TORCH + """
sys.path.insert(0, 'tests')
import numpy as np
from engine.runtime.presets import preset_settings
from engine.runtime.runner import StreamRuntime
from engine.runtime.sources import MapsSource
from helpers.runtime_fakes import FrameLocalBackend
rt = StreamRuntime(FrameLocalBackend(), preset_settings('realtime'), 16)
rt.set_identity(np.zeros((8, 8, 3), np.uint8))
maps = {t: np.full((5, 16, 16, 3), 9, np.uint8) for t in ('depth', 'normal', 'render')}
report = rt.run(MapsSource(maps), [])
assert report['frames_out'] == 5, report
print('ok')
"""
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr
