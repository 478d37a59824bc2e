"""The fixture sweep's check of rendered pages for figures that do not exist."""

from __future__ import annotations

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
