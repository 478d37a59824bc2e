"""Minimal HTML rendering (placeholder until the report template lands)."""

import html


def render_notebook(notebook, *, meta):
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(str(notebook), as_version=4)
    exp = HTMLExporter(template_name="basic")
    exp.exclude_input = True
    exp.exclude_input_prompt = True
    exp.exclude_output_prompt = True
    pre = TagRemovePreprocessor(
        remove_cell_tags=("parameters", "injected-parameters"), enabled=True
    )
    exp.register_preprocessor(pre, enabled=True)
    body, _ = exp.from_notebook_node(nb)
    return f"<html><body><h1>{html.escape(meta.get('title', ''))}</h1>{body}</body></html>"


def render_run_index(manifest):
    rows = "".join(
        f"<li><a href='{html.escape(n.get('html') or '')}'>{html.escape(n['title'])}</a> {n['status']} {html.escape(str(n.get('reason') or n.get('error') or ''))}</li>"
        for n in manifest["notebooks"]
    )
    return f"<html><body><h1>{html.escape(manifest['project'])}</h1><ul>{rows}</ul></body></html>"


def render_reports_index(manifests):
    rows = "".join(
        f"<li><a href='{html.escape(m['_dir'])}/index.html'>{html.escape(m['run'])}</a></li>"
        for m in manifests
    )
    return f"<html><body><ul>{rows}</ul></body></html>"
