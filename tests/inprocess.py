"""Run report notebooks in this process (no kernel, no papermill): cheap coverage of their code.

Each code cell runs as Jupyter would run it: the statements, then the value of a trailing
expression is "displayed" (its ``_repr_html_``), so the display helpers are exercised too. The
parameters cell keeps its defaults unless ``parameters`` overrides them, as papermill would.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class NotebookRun:
    name: str
    html: list[str] = field(default_factory=list)
    error: BaseException | None = None
    failed_cell: int | None = None
    namespace: dict = field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        return "\n".join(self.html)


def _cells(path: Path) -> list[tuple[list[str], str]]:
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = cell["source"]
        out.append((cell.get("metadata", {}).get("tags", []), "".join(source)))
    return out


def _display(value, html: list[str]) -> None:
    if value is None:
        return
    if hasattr(value, "_repr_html_"):
        markup = value._repr_html_()
        if markup is not None:
            html.append(str(markup))
    elif hasattr(value, "savefig"):
        import matplotlib.pyplot as plt

        plt.close(value)


def run_notebook(path: Path, parameters: dict) -> NotebookRun:
    """Execute the notebook's code cells in a fresh namespace; never raises."""
    import matplotlib.pyplot as plt

    run = NotebookRun(Path(path).stem)
    namespace = run.namespace
    namespace["__name__"] = "__main__"
    for number, (tags, source) in enumerate(_cells(path), start=1):
        try:
            tree = ast.parse(source)
            last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            body = tree.body[:-1] if last is not None else tree.body
            exec(compile(ast.Module(body, type_ignores=[]), path.name, "exec"), namespace)
            if "parameters" in tags:
                namespace.update(parameters)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), path.name, "eval"), namespace)
                _display(value, run.html)
        except Exception as exc:  # the test reports which cell of which notebook failed
            run.error, run.failed_cell = exc, number
            break
        finally:
            plt.close("all")
    return run


def run_suite_in_process(
    config: Path, artifacts_dir: Path, *, as_of: str = ""
) -> tuple[dict[str, NotebookRun], dict[str, str]]:
    """What ``icp-research run`` does, in this process: load once, every notebook in order.

    Returns the runs of the notebooks that ran and, for the others, why the runner would skip
    them. The data is loaded (and its facts computed) once and shared, as the runner shares
    its snapshot; ``icp_research.open_study`` is pointed at it while the notebooks run.
    """
    from unittest import mock

    import icp_research
    from icp_research.data.loading import load_tables
    from icp_research.data.study import Study
    from icp_research.pipeline.runner import discover_notebooks, missing_requirement

    dataset = load_tables(config)
    Study(dataset, as_of or None).precompute()

    def open_study(config=None, *, data_dir=None, as_of=None, artifacts_dir=None):
        return Study(dataset, as_of or None, artifacts_dir or None)

    runs, skipped = {}, {}
    parameters = {"config": str(config), "artifacts_dir": str(artifacts_dir), "as_of": as_of}
    Path(artifacts_dir).mkdir(parents=True, exist_ok=True)
    with mock.patch.object(icp_research, "open_study", open_study):
        for spec in discover_notebooks():
            reason = missing_requirement(spec, dataset)
            if reason:
                skipped[spec.name] = reason
            else:
                runs[spec.name] = run_notebook(spec.path, parameters)
    return runs, skipped
