"""helpers.setup(): both profiles, GPU absent and faked present, and every bad input."""

import os
import sys
from types import SimpleNamespace

import pytest
import torch

from helpers import config


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("GENAI_PROFILE", "GENAI_HUB", "GENAI_TINY_HUB_DIR", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                 *config.tiny_hub_environment(config.REPO_ROOT)):
        monkeypatch.delenv(name, raising=False)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fake_gpu(monkeypatch):
    """Pretend a CUDA GPU with 15 GiB, a T4 (bf16 only by emulation), and a reachable hub."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # what torch answers on a T4: True by default (emulation counts), False for real bf16 support
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
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
    assert cfg.gpu_memory_gib == 15.0 and cfg.pick(1, 2) == 2 and cfg.pick(1, 2, tiny_hub=3) == 2
    assert "15.0 GiB GPU" in capsys.readouterr().out
    assert "HF_HUB_OFFLINE" not in os.environ


def test_bf16_on_gpus_that_support_it(fake_gpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert config.setup().dtype == torch.bfloat16


def test_gpu_memory_is_reported_in_gib(fake_gpu, monkeypatch):
    l4_bytes = 23_580_639_232  # what torch reports for a "24 GB" NVIDIA L4: 22.0 GiB
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(total_memory=l4_bytes))
    assert config.setup().gpu_memory_gib == 22.0


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


@pytest.fixture
def tiny_hub(tmp_path, monkeypatch):
    """An (empty) complete tiny hub, and the variables that ask for it."""
    (tmp_path / "COMPLETE").write_text("test\n")
    monkeypatch.setenv("GENAI_TINY_HUB_DIR", str(tmp_path))
    monkeypatch.setenv("GENAI_HUB", "tiny")
    monkeypatch.setattr(config, "hub_reachable", lambda *args, **kwargs: pytest.fail("the tiny hub is offline"))
    return tmp_path


def test_full_profile_on_the_tiny_hub_runs_on_a_cpu(tiny_hub, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delitem(sys.modules, "huggingface_hub", raising=False)  # as in a fresh kernel (restored after)
    cfg = config.setup(profile="full")
    assert (cfg.profile, cfg.device, cfg.dtype, cfg.tiny_hub) == ("full", "cpu", torch.float32, True)
    assert cfg.pick(1, 2, tiny_hub=3) == 3 and cfg.pick(1, 2) == 2
    assert os.environ["HF_HUB_CACHE"] == str(tiny_hub / "huggingface" / "hub")
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TORCH_HOME"] == str(tiny_hub / "torch")
    assert "RANDOM WEIGHTS" in capsys.readouterr().out
    assert cfg.trained_weights("FID below 10") is False
    assert "not asserted: FID below 10" in capsys.readouterr().out


def test_trained_weights_off_the_tiny_hub(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.setup().trained_weights("anything") is True


def test_tiny_hub_that_was_not_built_says_how(tiny_hub, monkeypatch):
    (tiny_hub / "COMPLETE").unlink()
    with pytest.raises(RuntimeError, match="make tiny-hub"):
        config.setup(profile="full")


def test_bogus_hub_says_what_to_use(monkeypatch):
    monkeypatch.setenv("GENAI_HUB", "huggingface")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="GENAI_HUB=tiny"):
        config.setup(profile="full")


def test_whisper_skips_its_checksum_only_inside_the_tiny_hub(tmp_path, monkeypatch):
    import whisper

    monkeypatch.setattr(whisper, "_download", lambda url, root, in_memory: "downloaded")
    hub, elsewhere = tmp_path / "hub", tmp_path / "elsewhere"
    for folder in (hub / "cache" / "whisper", elsewhere):
        folder.mkdir(parents=True)
        (folder / "large-v3.pt").write_bytes(b"random weights")
    config.trust_tiny_whisper_checkpoints(hub)
    url = whisper._MODELS["large-v3"]
    assert whisper._download(url, str(hub / "cache" / "whisper"), False) == str(hub / "cache" / "whisper" / "large-v3.pt")
    assert whisper._download(url, str(hub / "cache" / "whisper"), True) == b"random weights"
    assert whisper._download(url, str(elsewhere), False) == "downloaded"  # outside the hub: the real check


def test_fast_cpu_dtype_picks_bfloat16_only_where_the_cpu_has_it(tmp_path):
    x86_with = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n"
    x86_without = "processor\t: 0\nmodel name\t: bf16 in a name is not a flag\nflags\t\t: fpu avx2 avx512f\n"
    arm_with = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
    expected = {x86_with: torch.bfloat16, x86_without: torch.float32, arm_with: torch.bfloat16}
    for number, (text, dtype) in enumerate(expected.items()):
        cpuinfo = tmp_path / f"cpuinfo{number}"
        cpuinfo.write_text(text)
        assert config.fast_cpu_dtype(cpuinfo) == dtype, text
    assert config.fast_cpu_dtype(tmp_path / "no-such-file") == torch.float32  # macOS, Windows
    assert config.fast_cpu_dtype() is config.fast_cpu_dtype()  # read once
