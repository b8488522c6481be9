"""
References generated from the code they describe, so that they cannot
drift from it: the settings (L{aleatoria.daemon.settings.SETTINGS}), the
metrics (a fresh L{aleatoria.ops.metrics.Metrics}) and the server API (its
OpenAPI document, L{aleatoria.http.api.OPENAPI}).
"""

import re

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList


class _Generated(Directive):
    """A directive whose reStructuredText is made by L{lines}, then parsed as if written."""

    def run(self):
        container = nodes.container()
        self.state.nested_parse(StringList(self.lines(), source="(generated)"), self.content_offset,
                                container)
        return container.children

    def lines(self):
        raise NotImplementedError


def _literal(text):
    return f"``{text}``" if text else "(none)"


def _plain(text):
    """C{text} as reStructuredText shows it as it is: C{whsec_} is no reference."""
    return re.sub(r"(?<=\w)_(?=\W|$)", r"\\_", text)


def _table(header, rows, widths):
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        first, *rest = row
        lines.append(f"   * - {first}")
        lines += [f"     - {cell}" for cell in rest]
    return lines


class Settings(_Generated):
    """Every setting: option, variable, default, meaning."""

    def lines(self):
        from aleatoria.daemon.settings import FLAGS, SETTINGS

        rows = []
        for setting in SETTINGS:
            option = "(environment only)" if setting.env_only else _literal(f"--{setting.name}")
            default = setting.default
            if setting.name in FLAGS:
                default = "off"
            elif isinstance(default, tuple):
                default = ", ".join(map(str, default))
            rows.append((option, _literal(setting.env), _literal(str(default)),
                         _plain(setting.help.replace("\n", " "))))
        return _table(("Option", "Variable", "Default", "Meaning"), rows, "22 26 14 38")


class Metrics(_Generated):
    """Every metric a daemon exposes, with its type, labels and help."""

    def lines(self):
        from aleatoria.ops.metrics import Metrics

        rows = []
        for family in Metrics().registry.collect():
            if not family.name.startswith("aleatoria_"):
                continue
            labels = sorted({label for sample in family.samples for label in sample.labels
                             if label not in ("le", "quantile")})
            name = family.name + ("_total" if family.type == "counter" else "")
            rows.append((_literal(name), family.type, ", ".join(labels) or "",
                         family.documentation))
        return _table(("Metric", "Type", "Labels", "Meaning"), rows, "34 10 14 42")


class HttpApi(_Generated):
    """Each route of the server API: method, path, what it does, what it answers."""

    def lines(self):
        from aleatoria.http.api import OPENAPI

        lines = []
        for path, operations in OPENAPI["paths"].items():
            for method, operation in operations.items():
                lines += [f"``{method.upper()} {path}``", ""]
                lines += ["   " + operation.get("summary", ""), ""]
                body = operation.get("requestBody")
                if body:
                    schema = body["content"]["application/json"]["schema"]["$ref"]
                    lines += [f"   Body: ``{schema.rsplit('/', 1)[1]}`` "
                              "(see the OpenAPI document).", ""]
                answers = ", ".join(sorted(operation.get("responses", {})))
                lines += [f"   Answers: {answers}.", ""]
        return lines


def setup(app):
    app.add_directive("aleatoria-settings", Settings)
    app.add_directive("aleatoria-metrics", Metrics)
    app.add_directive("aleatoria-http-api", HttpApi)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
