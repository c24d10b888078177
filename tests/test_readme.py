"""Every `$ matdiff …` example in the README prints exactly what the README shows."""

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from matdiff.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def examples():
    out = []
    for block in re.findall(r"```\n(.*?)```", README, flags=re.S):
        if not block.startswith("$ matdiff"):
            continue
        parts = re.split(r"^\$ ", block, flags=re.M)[1:]
        for part in parts:
            # the command runs until the first line that ends outside quotes
            lines = part.split("\n")
            cmd, i = "", 0
            while i < len(lines):
                cmd += lines[i] + "\n"
                i += 1
                try:
                    shlex.split(cmd.replace("\\\n", " "))
                    if not cmd.rstrip("\n").endswith("\\"):
                        break
                except ValueError:
                    continue
            expected = "\n".join(lines[i:]).strip("\n")
            out.append((shlex.split(cmd.replace("\\\n", " ")), expected))
    return out


EXAMPLES = examples()


def test_readme_has_examples():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("argv,expected", EXAMPLES, ids=[" ".join(a[1:3])[:40] for a, _ in EXAMPLES])
def test_readme_example(argv, expected):
    assert argv[0] == "matdiff"
    r = CliRunner().invoke(cli, argv[1:])
    assert r.exit_code == 0, r.output
    assert r.output.strip("\n") == expected
