"""README_cn.md (the Simplified Chinese README) stays linked and its commands stay runnable:
every ``--flag`` on a ``run_train.py``, ``run_predict.py``, ``python -m paddle_catdog ...`` or
``catdog-*`` line of its code blocks must appear in that command's own ``--help``."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_CN = ROOT / "README_cn.md"

Command = Tuple[str, ...]  # what to run before "--help": a script, or the module's subcommand
SCRIPTS = {"run_train.py": ("run_train.py",), "run_predict.py": ("run_predict.py",),
           # the console scripts are the same functions (pyproject.toml [project.scripts])
           "catdog-train": ("run_train.py",), "catdog-predict": ("run_predict.py",)}
SUBCOMMANDS = {"data": ("download",)}  # commands whose first argument is itself a subcommand
FLAG = re.compile(r"(?<![\w-])--[A-Za-z0-9][\w-]*")


def code_blocks(text: str) -> List[str]:
    """The shell code blocks (``` fences; python blocks are not command lines)."""
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)
            if lang not in ("python", "py")]


def command_lines(block: str) -> List[List[str]]:
    """Each command of a block as tokens: backslash continuations joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", block)
    return [tokens for line in joined.splitlines() if (tokens := shlex.split(line, comments=True))]


def parse_command(tokens: List[str]) -> Optional[Tuple[Command, List[str]]]:
    """(the command to ask for --help, the arguments typed after it), or None when the line runs
    none of ours. Options before the script (python -m paddle.distributed.launch --gpus ...) are
    the launcher's and are not checked."""
    for i, token in enumerate(tokens):
        name = Path(token).name
        if name in SCRIPTS:
            return SCRIPTS[name], tokens[i + 1:]
        if name.startswith("catdog-"):
            rest, sub = tokens[i + 1:], name[len("catdog-"):]
        elif tokens[i:i + 2] == ["-m", "paddle_catdog"] and i + 2 < len(tokens):
            rest, sub = tokens[i + 3:], tokens[i + 2]
        else:
            continue
        command: Command = ("-m", "paddle_catdog", sub)
        if sub in SUBCOMMANDS and rest and not rest[0].startswith("-"):
            command, rest = command + (rest[0],), rest[1:]
        return command, rest
    return None


def commands_in(text: str) -> Dict[Command, List[Tuple[str, List[str]]]]:
    """Command -> [(the line as written, its --flags)] for every line of ours in the code blocks."""
    found: Dict[Command, List[Tuple[str, List[str]]]] = {}
    for block in code_blocks(text):
        for tokens in command_lines(block):
            parsed = parse_command(tokens)
            if parsed:
                command, args = parsed
                flags = [a.split("=", 1)[0] for a in args if FLAG.fullmatch(a.split("=", 1)[0])]
                found.setdefault(command, []).append((" ".join(tokens), flags))
    return found


# Runs in one child Python: each command's real entry point (the script's file, or the package's
# __main__) with "--help", so Paddle is imported once, not once per command (a few seconds each).
HELP_DRIVER = """
import contextlib, io, json, runpy, sys
out = {}
for command in json.loads(sys.argv[1]):
    module = command[0] == "-m"
    sys.argv = [command[1] if module else command[0], *command[2 if module else 1:], "--help"]
    buf, code = io.StringIO(), 0
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            if module:
                runpy.run_module(command[1], run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(command[0], run_name="__main__")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out[" ".join(command)] = [code, buf.getvalue()]
print(json.dumps(out))
"""


def help_texts(commands: List[Command]) -> Dict[Command, str]:
    """Each command's --help output, run once (in one subprocess with sys.executable)."""
    result = subprocess.run([sys.executable, "-c", HELP_DRIVER, json.dumps(commands)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.splitlines()[-1])
    out = {}
    for command in commands:
        code, text = answers[" ".join(command)]
        assert code == 0, f"python {' '.join(command)} --help failed:\n{text}"
        out[command] = text
    return out


def unknown_flags(text: str, helps: Dict[Command, str]) -> List[str]:
    """``line: --flag`` for every flag that the command's --help does not list."""
    bad = []
    for command, lines in commands_in(text).items():
        known = set(FLAG.findall(helps[command]))
        bad += [f"{line}: {flag}" for line, flags in lines for flag in flags if flag not in known]
    return bad


@pytest.fixture(scope="module")
def readme_cn() -> str:
    return README_CN.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def helps(readme_cn: str) -> Dict[Command, str]:
    return help_texts(sorted(commands_in(readme_cn)))


def test_readmes_link_each_other(readme_cn: str) -> None:
    top = README.read_text(encoding="utf-8").splitlines()[:5]
    assert any("[简体中文](README_cn.md)" in line for line in top), "README.md: no link to README_cn.md"
    assert any("[English](README.md)" in line for line in readme_cn.splitlines()[:5]), \
        "README_cn.md: no link back to README.md"


def test_every_flag_exists(readme_cn: str, helps: Dict[Command, str]) -> None:
    found = commands_in(readme_cn)
    # the parser must see the commands the README is about, or the check below checks nothing
    for command in [("run_train.py",), ("run_predict.py",), ("-m", "paddle_catdog", "evaluate"),
                    ("-m", "paddle_catdog", "export")]:
        assert command in found, f"no {' '.join(command)} command found in README_cn.md"
    assert unknown_flags(readme_cn, helps) == []


def test_the_check_catches_a_bogus_flag(helps: Dict[Command, str]) -> None:
    text = ("```bash\npython run_train.py --data-dir x \\\n    --epochs 1 --no-such-flag  # --fine\n"
            "catdog-evaluate --weights w --bogus=1\n```\n")
    assert unknown_flags(text, helps) == [
        "python run_train.py --data-dir x --epochs 1 --no-such-flag: --no-such-flag",
        "catdog-evaluate --weights w --bogus=1: --bogus"]


def test_no_shared_paths_outside_tests(readme_cn: str) -> None:
    # ../shared exists only beside this repository's CI checkout; only the Tests section names it
    section, bad = "", []
    for n, line in enumerate(readme_cn.splitlines(), 1):
        if line.startswith("## "):
            section = line
        if "../shared" in line and not ("测试" in section or "Tests" in section):
            bad.append(f"README_cn.md:{n} ({section or 'top'}): {line.strip()}")
    assert bad == []
