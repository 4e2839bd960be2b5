"""The root group loads plugins' commands on demand: artgan's own commands start without any
plugin, plugins' commands need no helper, and they follow the loaded registry."""

from __future__ import annotations

import subprocess
import sys
import types

import click
import pytest

import artgan
from artgan import plugins as P
from artgan.cli import cli


def commands_plugin(name: str, command_name: str) -> types.ModuleType:
    """A throwaway plugin that adds one root command and one `evaluate` subcommand."""
    def artgan_register_commands(cli):
        @cli.command(command_name)
        def hello():
            """Say hello.

            \b
            Example:
              artgan hello
            """
            click.echo(f"hello from {name}")

        @cli.commands["evaluate"].command(command_name)
        def evaluate_hello():
            """Evaluate hello."""
            click.echo(f"evaluated by {name}")

    module = types.ModuleType(name)
    module.artgan_register_commands = artgan.hookimpl(artgan_register_commands)
    return module


@pytest.fixture
def with_plugin(monkeypatch):
    """Install a throwaway plugin as the process-wide one; artgan's plugins are loaded too."""
    def install(*modules):
        monkeypatch.setattr(P, "_STATE", P.make_plugin_manager(modules))
    yield install
    P.reset()


def test_core_commands_and_version_load_no_plugin(runner, monkeypatch):
    monkeypatch.setattr(P, "_STATE", None)
    r = runner.invoke(cli, ["--version"])
    assert r.exit_code == 0 and "artgan, version" in r.output
    r = runner.invoke(cli, ["generate", "--help"])
    assert r.exit_code == 0 and "Example" in r.output
    assert P._STATE is None, "a core command loaded the plugins"


def test_plugin_commands_are_found_without_a_helper(runner, with_plugin):
    with_plugin(commands_plugin("greeter", "hello"))
    r = runner.invoke(cli, ["hello"])
    assert r.exit_code == 0 and r.output == "hello from greeter\n"
    r = runner.invoke(cli, ["evaluate", "hello"])
    assert r.exit_code == 0 and r.output == "evaluated by greeter\n"
    listing = runner.invoke(cli, ["--help"]).output
    assert "hello" in listing and "process" in listing


def test_plugin_commands_follow_the_loaded_registry(runner, with_plugin):
    with_plugin(commands_plugin("first", "first-cmd"))
    assert runner.invoke(cli, ["first-cmd"]).exit_code == 0
    with_plugin(commands_plugin("second", "second-cmd"))  # a new registry: its commands, not the old ones
    assert runner.invoke(cli, ["second-cmd"]).output == "hello from second\n"
    r = runner.invoke(cli, ["first-cmd"])
    assert r.exit_code == 2 and "No such command 'first-cmd'" in r.output


def test_a_plugin_cannot_replace_a_core_command(runner, with_plugin):
    with_plugin(commands_plugin("usurper", "generate"))
    with pytest.warns(P.PluginWarning, match="`artgan generate` is ignored"):
        listing = runner.invoke(cli, ["--help"])
    assert listing.exit_code == 0
    r = runner.invoke(cli, ["generate", "--help"])
    assert "onnxruntime" in r.output and "hello" not in r.output.lower()


def test_plugins_lists_the_commands_a_plugin_added(runner, with_plugin):
    with_plugin(commands_plugin("greeter", "hello"))
    r = runner.invoke(cli, ["plugins"])
    assert r.exit_code == 0
    assert "commands: evaluate hello, hello" in r.output


def test_the_installed_command_line_starts_core_commands_without_plugins():
    code = ("import sys, artgan.plugins as P; from artgan.cli import main; sys.argv = ['artgan', 'doctor', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint(P._STATE is None)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "True"
