from dissect.cli.main import cli

cli(prog_name="dissect")
