from __future__ import annotations

import json

from edgebit.cli.options import JsonOpt


def doctor(as_json: JsonOpt = False) -> None:
    """What this machine can do and what it lacks for each target, each missing piece with the command that
    fixes it. Changes nothing."""
    from rich.markup import escape
    from rich.table import Table

    from edgebit.api import doctor as run_doctor
    from edgebit.cli.console import out

    found = run_doctor()
    if as_json:
        print(json.dumps([c.to_dict() for c in found], indent=2))
        return
    table = Table(title="edgebit doctor", show_lines=False)
    for column in ("", "what", "for", "found / fix"):
        table.add_column(column)
    for c in found:
        mark = "[green]ok[/]" if c.ok else "[red]missing[/]"
        table.add_row(mark, escape(c.name), escape(c.area), escape(c.detail if c.ok else f"{c.detail}: {c.fix}"))
    out.print(table)
    missing = [c for c in found if not c.ok]
    out.print(f"{len(found) - len(missing)} of {len(found)} present" + (
        "; fix the missing ones with the commands above (or bash scripts/setup.sh from a checkout)" if missing else ""),
        markup=False)
