"""The README's command reference cannot drift from `--help`: every command and every flag
click knows is in it, and it names nothing click does not know."""
import re
from pathlib import Path

from dissect.cli.main import cli

README = Path(__file__).parents[1] / "README.md"


def reference() -> dict[str, str]:
    """The README's `## Commands` block: the text of each `dissect COMMAND` entry."""
    text = README.read_text()
    block = text[text.index("## Commands"):]
    block = block[block.index("```sh") + 5:block.index("```", block.index("```sh") + 5)]
    entries: dict[str, str] = {}
    for line in block.splitlines():
        match = re.match(r"dissect ([a-z-]+)", line)
        if match:
            name = match.group(1)
            entries[name] = entries.get(name, "") + " " + line
        elif line.startswith("    ") and entries:   # a continuation of the entry above
            entries[name] += " " + line
    return entries


def test_every_command_and_flag_is_in_the_readme_and_nothing_else():
    entries = reference()
    assert set(entries) == set(cli.commands), "README commands differ from the CLI's"
    for name, command in cli.commands.items():
        flags = {opt for param in command.params for opt in param.opts if opt.startswith("--")} - {"--help"}
        named = set(re.findall(r"(--[a-z][a-z0-9-]*)", entries[name]))
        assert flags - named == set(), f"dissect {name}: flags missing from the README: {sorted(flags - named)}"
        assert named - flags == set(), f"dissect {name}: the README names flags it does not have: {sorted(named - flags)}"
