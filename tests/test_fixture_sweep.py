"""The fixture sweep's check of rendered pages for figures that do not exist."""

from __future__ import annotations

from devtools import fixture_sweep
from devtools.fixture_sweep import broken_text


def test_broken_figures_in_a_rendered_page_are_found(tmp_path):
    ok = "<p>Churn 1.5x as fast (95% CI 1.1–2.0x); infinite patience; Nancy; fit() ok</p>"
    (tmp_path / "01_report.html").write_text(
        "<style>.nan { color: red }</style>" + ok, encoding="utf-8"
    )
    assert broken_text(tmp_path) == []
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "icp_onepager.html").write_text(
        "<td>churn infx as fast</td>", encoding="utf-8"
    )
    (tmp_path / "02_report.html").write_text(
        "<p>0.00x, 95% CI nan&ndash;nan</p><p>in the quarter that followed ()</p>",
        encoding="utf-8",
    )
    found = broken_text(tmp_path)
    assert [line.split(":")[0] for line in found] == ["02_report.html", "icp_onepager.html"]
    assert "CI nan–nan" in found[0] and "infx as fast" in found[1]


def test_one_pass_runs_each_fixture_once_alternating_plain_and_quarter(tmp_path, monkeypatch):
    calls = []

    def fake_run(config, out, quarter=None):
        calls.append((config.parent.name, quarter))
        notebooks = [{"name": "00_data_overview", "status": "ok"}]
        return {"exit": 0, "seconds": 0.0, "as_of": "2025-12-31", "notebooks": notebooks}

    monkeypatch.setattr(fixture_sweep, "run", fake_run)
    names = ["order_lines", "pure_noise", "saas_churn"]
    assert fixture_sweep.main(["--one-pass", "--only", *names, "--out", str(tmp_path)]) == 0
    # In name order: plain, then the quarter before the data's last date, then plain.
    assert calls == [("order_lines", None), ("pure_noise", "2025Q3"), ("saas_churn", None)]
    calls.clear()
    assert fixture_sweep.main(["--only", "saas_churn", "--out", str(tmp_path)]) == 0
    assert calls == [("saas_churn", None), ("saas_churn", "2025Q3")]
