"""Accessibility figures: axe-core violations by impact on the main pages of each role, with
data, and the contrast ratios the issue named.

    .venv/bin/python benchmarks/bench_accessibility.py

Runs tests/test_accessibility.py (Chromium, a live panel, axe-core from static/vendor/) with
its findings written to a scratch folder, then counts them. The goal is 0 critical and 0
serious; moderate and minor are listed for information. The contrast ratios are computed
from static/css/panel.css with the WCAG formula, next to the values measured before the fix.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine_line, print_table  # noqa: E402

IMPACTS = ("critical", "serious", "moderate", "minor")


def luminance(colour):
    red, green, blue = (int(colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4))
    channel = lambda c: c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4  # noqa: E731
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def contrast(foreground, background):
    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def css_colours():
    css = (ROOT / "static" / "css" / "panel.css").read_text()
    variables = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", css))

    def rule(selector, prop):
        block = re.search(r"(?m)^" + re.escape(selector) + r"\s*\{([^}]*)\}", css).group(1)
        value = re.search(r"(?<![-\w])" + prop + r":\s*([^;]+);", block).group(1).strip()
        return variables[value[6:-1]] if value.startswith("var(") else value

    return [
        ("muted text on the page", rule(".help", "color"), variables["bg"], 4.39),
        ("job log timestamps", rule(".log .t", "color"), rule(".log", "background"), 4.14),
        ('"Succeeded" badge', rule(".status-succeeded", "color"), rule(".status-succeeded", "background"), 4.13),
        ('"Queued" badge', rule(".status-queued", "color"), rule(".status-queued", "background"), 4.24),
    ]


def main():
    with tempfile.TemporaryDirectory(prefix="filrouge-a11y-") as scratch:
        env = dict(os.environ, FILROUGE_TEST_ARTIFACTS=scratch)
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_accessibility.py", "-k", "each_role or login_page"],
                             cwd=ROOT, env=env, capture_output=True, text=True)
        print(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:])
        rows, total, rules = [], Counter(), Counter()
        for role in ("admin", "operator", "teacher", "student", "anonymous"):
            findings_file = Path(scratch) / f"a11y-{role}.json"
            if not findings_file.exists():
                continue
            findings = json.loads(findings_file.read_text())
            pages_file = Path(scratch) / f"a11y-{role}.pages"
            pages = len(pages_file.read_text().split()) if pages_file.exists() else 2  # login: English and French
            counts = Counter()
            for violation in findings:
                counts[violation["impact"]] += len(violation["nodes"])
                rules[f"{violation['impact']} {violation['id']}"] += len(violation["nodes"])
            total.update(counts)
            total["pages"] += pages
            rows.append([role, pages, *(counts[impact] for impact in IMPACTS)])
        rows.append(["all", total["pages"], *(total[impact] for impact in IMPACTS)])
    print(machine_line())
    print_table("axe-core violations (elements) on the main pages, with data", ["role", "pages", *IMPACTS], rows)
    print_table("Rules still reported", ["rule", "elements"], sorted(rules.items()) or [["none", 0]])
    print_table("Contrast ratios (WCAG AA asks 4.5:1 for normal text)", ["text", "colours", "before (issue 13)", "now"],
                [[name, f"{foreground} on {background}", f"{before:.2f}:1", f"{contrast(foreground, background):.2f}:1"]
                 for name, foreground, background, before in css_colours()])


if __name__ == "__main__":
    main()
