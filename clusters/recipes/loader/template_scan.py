"""Looking into templates before anything runs: lookups, filters, facts and hostvars they use."""

from __future__ import annotations

from pathlib import Path

from ..templating import scan


class TemplateScanning:
    """The reader's verbs for templates (Reader combines them)."""

    def scan_task_templates(self, data, source, line):
        for key, value in data.items():
            if key in ("name",):
                continue
            expression = key in ("when", "changed_when", "failed_when", "until")
            self.scan_value(value, source, line, expression)

    def scan_value(self, value, source, line, expression=False):
        if isinstance(value, str):
            found = scan(value, expression=expression)
            if found.error:
                return  # a broken template fails its task with the exact message at run time, as in Ansible
            self.note_template(found, source, line)
        elif isinstance(value, list):
            for item in value:
                self.scan_value(item, source, line, expression)
        elif isinstance(value, dict):
            for item in value.values():
                self.scan_value(item, source, line, expression)

    def note_template(self, found, source, line):
        for lookup in sorted(found.lookups):
            self.fallback(source, line, f"the lookup {lookup} is not native")
        for name in sorted(found.filters):
            self.fallback(source, line, f"the filter {name} is not native")
        for name in sorted(found.tests):
            self.fallback(source, line, f"the test {name} is not native")
        for name in sorted(found.facts_missing):
            self.fallback(source, line, f"the fact {name} is not gathered natively")
        if found.hostvars:
            self.fallback(source, line, "hostvars (other hosts' variables and facts) is not native")
        if found.facts:
            self.uses_facts = True

    def scan_template_file(self, src, scope, source, line):
        candidates = [Path(src)] if Path(src).is_absolute() else [Path(directory) / src for directory in scope.search_dirs]
        if self.base_dir is not None and not Path(src).is_absolute():
            candidates += [self.base_dir / "templates" / src, self.base_dir / src]
        for candidate in candidates:
            if candidate.is_file() and self.inside(candidate):
                try:
                    text = candidate.read_text(errors="replace")
                except OSError:
                    return
                found = scan(text, whole_file=True)
                if not found.error:
                    self.note_template(found, self.label_of(candidate), 0)
                return
