import subprocess
import sys

import pytest
import torch

from ml.device import describe_device, pick_device


def test_auto_picks_cuda_only_when_present(monkeypatch):
    monkeypatch.delenv("LOUPE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected
    assert pick_device("auto").type == expected
    assert pick_device("cpu") == torch.device("cpu")
    assert "cpu" in describe_device(torch.device("cpu"))


def test_environment_overrides_the_automatic_choice(monkeypatch):
    monkeypatch.setenv("LOUPE_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_asking_for_cuda_without_it_is_an_error_not_a_silent_fallback():
    with pytest.raises(RuntimeError, match="CUDA"):
        pick_device("cuda")
    with pytest.raises(ValueError):
        pick_device("tpu")


def test_importing_ml_does_not_initialise_cuda():
    code = (
        "import torch, ml.augment, ml.baseline, ml.data, ml.device, ml.losses, ml.metrics, "
        "ml.models, ml.scoring, ml.synthetic, ml.training; "
        "print(torch.cuda.is_initialized())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
