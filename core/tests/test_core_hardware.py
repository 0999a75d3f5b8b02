"""Hardware detection, presets and durations."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workshop import hardware as hw


def make(backend="cpu", count=1, mem=None):
    return hw.Hardware(backend, count, "test device", mem, cpu_cores=2, ram_gb=8.0)


@pytest.mark.parametrize(
    "machine, preset",
    [
        (make("cpu", 1), "cpu"),
        (make("cpu", 8), "cpu"),  # simulated host devices are still a CPU
        (make("gpu", 1, 16.0), "gpu"),
        (make("gpu", 1, None), "gpu"),
        (make("gpu", 1, 79.0), "full"),
        (make("gpu", 4, 24.0), "full"),
        (make("tpu", 8, 16.0), "full"),
    ],
)
def test_presets_follow_the_hardware(machine, preset):
    assert hw.choose_preset(machine) == preset


def test_override_order(monkeypatch):
    machine = make("gpu", 1, 16.0)
    assert hw.resolve_preset(None, machine) == ("gpu", "detected")
    monkeypatch.setenv("WORKSHOP_PRESET", "tiny")
    assert hw.resolve_preset(None, machine) == ("tiny", "from WORKSHOP_PRESET")
    assert hw.resolve_preset("full", machine) == ("full", "chosen with --preset")
    with pytest.raises(hw.PresetError, match="did you mean 'tiny'"):
        hw.resolve_preset("tin", machine)
    monkeypatch.setenv("WORKSHOP_PRESET", "huge")
    with pytest.raises(hw.PresetError, match="no preset 'huge'"):
        hw.current_preset()


def test_detect_reports_this_machine():
    found = hw.detect()
    assert found.backend in {"cpu", "gpu", "tpu"}
    assert found.device_count >= 1 and found.cpu_cores >= 1
    assert found.jax_version
    assert found.backend in found.describe()


def test_importing_hardware_does_not_import_jax():
    code = "import sys, workshop.hardware, workshop.data, workshop.cli; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("text, seconds", [("5m", 300), ("90s", 90), ("1h30m", 5400), ("300", 300), ("2.5m", 150), ("1 h", 3600)])
def test_parse_duration(text, seconds):
    assert hw.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "five minutes", "5x", "-3", "0", "5m3"])
def test_bad_durations_explain_the_format(text):
    with pytest.raises(hw.BudgetError, match="5m"):
        hw.parse_duration(text)


def test_detect_without_jax_reports_the_cpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # makes `import jax` raise ImportError
    found = hw.detect()
    assert found.backend == "cpu" and "JAX not installed" in found.device_kind
    assert hw.choose_preset(found) == "cpu"
