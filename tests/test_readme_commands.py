"""The README's command reference cannot drift from `--help`: every command and every flag
click knows is in it, and it names nothing click does not know; nor can its strategies table
drift from the strategies' settings as declared."""
import re
from pathlib import Path

from dissect.cli.main import cli
from dissect.engine.strategy_settings import ALL_SETTINGS, STRATEGY_SETTINGS

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


def strategies_table() -> dict[str, str]:
    """The README's `### Strategies` table: each strategy's row, by the names in its first cell."""
    text = README.read_text()
    block = text[text.index("### Strategies (`--strategy`)"):]
    block = block[:block.index("\n\n", block.index("| name |"))]
    rows = {}
    for line in block.splitlines():
        if line.startswith("| `"):
            for name in re.findall(r"`([a-z-]+)`", line.split("|")[1]):
                rows[name] = line
    return rows


def test_the_strategies_table_has_every_strategy_and_its_own_settings_with_their_defaults():
    rows = strategies_table()
    assert list(rows) == list(STRATEGY_SETTINGS), "README strategies differ from strategy_settings.py's"
    for name, settings in STRATEGY_SETTINGS.items():
        for setting in settings:
            default = setting.default_text or (f"{setting.default:g}" if setting.type is not str else setting.default)
            said = re.search(re.escape(setting.option) + r"`[():, ]*(?:default )?`?" + re.escape(default), rows[name])
            assert said, f"README's {name} row does not give {setting.option} with its default {default}"
        others = {s.option for s in ALL_SETTINGS} - {s.option for s in settings}
        named = set(re.findall(r"(--[a-z][a-z0-9-]*)", rows[name]))
        assert not named & others, f"README's {name} row names another strategy's settings: {sorted(named & others)}"
