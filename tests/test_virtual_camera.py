"""--virtual-camera (mprt live, mprt serve): a clear error without pyvirtualcam or without a device."""
import sys

import pytest

from engine.cli import main
from engine.errors import InputError
from engine.runtime.virtual_camera import VirtualCameraSink, open_virtual_camera


def test_missing_package_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails as if not installed
    with pytest.raises(InputError, match=r"pip install -e '\.\[virtualcam\]'"):
        open_virtual_camera(64, 64, 25)


def test_no_device_is_a_clear_error():
    pyvirtualcam = pytest.importorskip("pyvirtualcam", reason="pyvirtualcam not installed (extra 'virtualcam')")
    try:
        cam = pyvirtualcam.Camera(width=64, height=64, fps=25)
    except RuntimeError:
        pass  # no device here: the case under test
    else:
        cam.close()
        pytest.skip("a virtual camera device exists on this machine")
    with pytest.raises(InputError, match="no virtual camera device.*modprobe v4l2loopback"):
        VirtualCameraSink(64, 64, 25)


@pytest.mark.parametrize("command", [["live", "--source", "x.png", "--video", "v.mp4"], ["serve"]])
def test_cli_refuses_before_loading_anything(monkeypatch, capsys, command):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)
    monkeypatch.setenv("DISPLAY", "")
    rc = main(command + ["--virtual-camera"])
    assert rc == 2 and "pyvirtualcam" in capsys.readouterr().err
