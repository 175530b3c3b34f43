#!/usr/bin/env python3
"""Keep each role's interface documented in one place: meta/argument_specs.yml.

  scripts/role-docs.py          rewrite the variables section of every role README
  scripts/role-docs.py --check  fail when a README is stale, or when
                                defaults/main.yml and argument_specs disagree
                                (a default without a spec, or a spec default
                                that differs from defaults/main.yml)

The README part between the BEGIN/END markers is generated; the rest is prose.

Why not a maintained tool (issue 13 asked; checked 2026-12-01):
- aar-doc 2.4.0 renders the same tables, but one per entry point: the airflow
  role's entry points share one option list (a YAML anchor), so its README
  would list airflow_version 9 times and grow from 344 to 878 lines; here
  each option is listed once, under the first entry point that takes it.
- aar-doc's `defaults` command writes defaults/main.yml from the specs; it
  does not check that the two agree, and defaults/main.yml carries the
  comments ops read. The --check below is what catches drift.
- antsibull-docs renders a docs site (RST), not README sections; its
  `lint-collection-docs` runs in `make sanity` on the same specs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- BEGIN generated from meta/argument_specs.yml by scripts/role-docs.py -->"
END = "<!-- END generated -->"


def markup(text: str) -> str:
    """Ansible's C(...) and I(...) as Markdown code."""
    return re.sub(r"[CI]\(([^)]*)\)", r"`\1`", text)


def render(specs: dict) -> str:
    out = [BEGIN]
    seen: set[str] = set()
    for entry, spec in specs["argument_specs"].items():
        out += ["", f"### Entry point `{entry}`", "", spec.get("short_description", "").strip(), ""]
        if entry != "main" and spec.get("description"):  # main's is the README's own prose
            out += [markup(" ".join(spec["description"]).strip()), ""]
        options = {k: v for k, v in (spec.get("options") or {}).items() if k not in seen}
        if len(options) < len(spec.get("options") or {}):
            out += ["Takes the variables listed above, and:" if options else "Takes the variables listed above.", ""]
        if not options:
            if not spec.get("options"):
                out += ["No variables.", ""]
            continue
        seen.update(options)
        out += ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
        for name, opt in options.items():
            desc = opt.get("description", "")
            desc = " ".join(desc) if isinstance(desc, list) else desc
            desc = markup(desc)
            if opt.get("required"):
                default = "**required**"
            elif "default" in opt:
                default = f"`{yaml.safe_dump(opt['default'], default_flow_style=True).strip().removesuffix('...').strip()}`"
            else:
                default = "computed (see description)"
            typ = opt.get("type", "str") + (f" of {opt['elements']}" if "elements" in opt else "")
            if "choices" in opt:
                desc += " One of: " + ", ".join(f"`{c}`" if c != "" else "`\"\"`" for c in opt["choices"]) + "."
            out.append(f"| `{name}` | {typ} | {default} | {desc.replace('|', '&#124;')} |")
        out.append("")
    out.append(END)
    return "\n".join(out)


def disagreements(role: Path, specs: dict) -> list[str]:
    defaults = yaml.safe_load((role / "defaults/main.yml").read_text()) or {}
    options = {}
    for spec in specs["argument_specs"].values():
        options.update(spec.get("options") or {})
    problems = [f"{role.name}: {name} has a default but no argument spec" for name in defaults if name not in options]
    for name, opt in options.items():
        if "default" in opt and name in defaults and opt["default"] != defaults[name]:
            problems.append(f"{role.name}: {name} defaults to {defaults[name]!r} but the spec says {opt['default']!r}")
        if "default" in opt and name not in defaults:
            problems.append(f"{role.name}: {name} has a spec default but none in defaults/main.yml")
    return problems


def main() -> int:
    check = "--check" in sys.argv
    problems = []
    for role in sorted((ROOT / "roles").iterdir()):
        specs = yaml.safe_load((role / "meta/argument_specs.yml").read_text())
        readme = role / "README.md"
        text = readme.read_text()
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        new = head + render(specs) + tail
        if new != text:
            if check:
                problems.append(f"{readme.relative_to(ROOT)} is stale: run scripts/role-docs.py")
            else:
                readme.write_text(new)
        problems += disagreements(role, specs)
    for problem in dict.fromkeys(problems):
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
