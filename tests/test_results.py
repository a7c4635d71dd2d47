"""helpers.results and helpers.report: the measured-results files and the README table."""

import json

import pytest

from helpers import config, report, results


def test_record_results_writes_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(results, "peak_rss_mb", lambda: 512.0)  # the test worker's own peak grows with its other tests
    cfg = config.setup(seed=0)
    import numpy as np
    import torch

    record = results.record_results("99_demo", {"fid": np.float32(4.25), "steps": 3,
                                                "table": {"few-shot": torch.tensor(0.5)}}, cfg)
    written = json.loads((tmp_path / "99_demo.json").read_text())
    assert written == record
    assert written["notebook"] == "99_demo" and written["profile"] == "small"
    assert written["metrics"] == {"fid": 4.25, "steps": 3, "table": {"few-shot": 0.5}}
    assert written["seconds"] >= 0 and written["peak_rss_mb"] == 512.0


def test_non_finite_metric_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_RESULTS_DIR", str(tmp_path))
    cfg = config.setup()
    with pytest.raises(ValueError, match="not finite"):
        results.record_results("99_demo", {"fid": float("nan")}, cfg)


def test_record_results_needs_setup_first(monkeypatch):
    cfg = config.setup()
    monkeypatch.setattr(config, "started_at", None)
    with pytest.raises(RuntimeError, match="helpers.setup"):
        results.record_results("99_demo", {}, cfg)


def test_report_table_and_readme_update(tmp_path):
    (tmp_path / "01_gans.json").write_text(json.dumps({
        "notebook": "01_gans", "profile": "small", "seconds": 141.2, "peak_rss_mb": 1830.4,
        "metrics": {"fid_dcgan": 4.1234, "scores": {"a": 0.5}}}))
    table = report.results_table(tmp_path)
    assert "| 01_gans | small | 141 | 1830 | fid_dcgan 4.12; scores a 0.5 |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.START}\nold\n{report.END}\noutro\n")
    report.update_readme(readme, table)
    text = readme.read_text()
    assert "old" not in text and table in text and text.startswith("intro") and text.endswith("outro\n")
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        report.update_readme(readme, table)


def test_record_results_checks_the_small_profile_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(results, "peak_rss_mb", lambda: 512.0)  # as a notebook's kernel under the bar
    cfg = config.setup()
    record = results.record_results("99_demo", {}, cfg)
    assert 0 < record["cpu_seconds"] and record["peak_rss_mb"] < results.SMALL_PROFILE_BUDGET["peak_rss_mb"]
    monkeypatch.setitem(results.SMALL_PROFILE_BUDGET, "peak_rss_mb", 1)
    with pytest.raises(AssertionError, match="over the small profile's budget.*peak_rss_mb"):
        results.record_results("99_demo", {}, cfg)
    results.check_budget({"notebook": "99_demo", "profile": "full", "cpu_seconds": 10**6, "peak_rss_mb": 10**6})
