"""helpers.setup(): both profiles, GPU absent and faked present, and every bad input."""

import os
from types import SimpleNamespace

import pytest
import torch

from helpers import config


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("GENAI_PROFILE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fake_gpu(monkeypatch):
    """Pretend a CUDA GPU with 15 GB (a T4 unless bf16 is switched on) and a reachable hub."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: SimpleNamespace(total_memory=15 * 2**30))
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: None)
    monkeypatch.setattr(config, "hub_reachable", lambda *args, **kwargs: True)


def test_small_profile_without_gpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = config.setup(seed=3)
    assert (cfg.profile, cfg.device, cfg.dtype, cfg.seed) == ("small", "cpu", torch.float32, 3)
    assert cfg.small and not cfg.full and cfg.pick(1, 2) == 1
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert torch.get_num_threads() == cfg.threads
    line = capsys.readouterr().out.strip()
    assert line.startswith("profile=small device=cpu dtype=float32 seed=3") and "\n" not in line


def test_seed_makes_runs_reproducible():
    config.setup(seed=7)
    first = torch.rand(3)
    config.setup(seed=7)
    assert torch.equal(first, torch.rand(3))


def test_config_is_frozen():
    cfg = config.setup()
    with pytest.raises(AttributeError):
        cfg.profile = "full"


def test_full_profile_with_gpu_t4(fake_gpu, capsys):
    cfg = config.setup()
    assert (cfg.profile, cfg.device, cfg.dtype) == ("full", "cuda", torch.float16)
    assert cfg.gpu_memory_gb == 15.0 and cfg.pick(1, 2) == 2
    assert "15.0 GB GPU" in capsys.readouterr().out
    assert "HF_HUB_OFFLINE" not in os.environ


def test_bf16_on_gpus_that_support_it(fake_gpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert config.setup().dtype == torch.bfloat16


def test_env_override_runs_small_on_a_gpu(fake_gpu, monkeypatch):
    monkeypatch.setenv("GENAI_PROFILE", "small")
    cfg = config.setup()
    assert (cfg.profile, cfg.device, cfg.dtype) == ("small", "cpu", torch.float32)


def test_bogus_profile_says_what_to_use(monkeypatch):
    monkeypatch.setenv("GENAI_PROFILE", "bogus")
    with pytest.raises(ValueError, match="GENAI_PROFILE=small"):
        config.setup()


def test_full_without_gpu_gives_the_colab_hint(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("GENAI_PROFILE", "full")
    with pytest.raises(RuntimeError, match="Runtime → Change runtime type"):
        config.setup()


def test_full_without_hub_access(fake_gpu, monkeypatch):
    monkeypatch.setattr(config, "hub_reachable", lambda *args, **kwargs: False)
    with pytest.raises(RuntimeError, match="cannot be reached.*GENAI_PROFILE=small"):
        config.setup(profile="full")


def test_full_with_hub_offline_flag(fake_gpu, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE=1"):
        config.setup(profile="full")


def test_hub_reachable_is_false_for_an_unresolvable_host():
    assert config.hub_reachable("no-such-host.invalid", timeout=0.5) is False
