"""The documentation stays true and reachable: README.md, README_cn.md and the pages under docs/
(English in docs/en/, Chinese in docs/zh/, one twin per page).

- every ``--flag`` on a command line of ours (``run_train.py``, ``run_predict.py``, ``catdog-*``,
  ``python -m paddle_catdog ...``, ``tools/run_notebooks.py``) in their shell code blocks appears in
  that command's own ``--help``;
- every relative link or image points to a file that exists, and every ``#anchor`` to a heading;
- each docs/en/X.md has its docs/zh/X.md twin, the two link each other, and the READMEs link
  every page of their language;
- README.md's first screen holds the set-up, train and predict commands and a picture, and its
  Tests section's command is the one ``.ci/run`` runs;
- README_cn.md has the sections of a Paddle project's README (PaddleClas ``README_ch.md``);
- the Chinese pages keep to the glossary (术语表) the notebooks use;
- LICENSE is the Apache License 2.0, and pyproject.toml says so.
"""
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
DOCS = ROOT / "docs"
PAGES = [README, README_CN, *sorted(DOCS.rglob("*.md"))]
FIRST_SCREEN = 60  # lines of README.md a newcomer sees before scrolling

Command = Tuple[str, ...]  # what to run before "--help": a script (and its subcommand), or the module's
SCRIPTS = {"run_train.py": ("run_train.py",), "run_predict.py": ("run_predict.py",),
           # the console scripts are the same functions (pyproject.toml [project.scripts])
           "catdog-train": ("run_train.py",), "catdog-predict": ("run_predict.py",),
           "run_notebooks.py": ("tools/run_notebooks.py",)}
# commands whose first argument is itself a subcommand with its own options
SUBCOMMANDS = {"data": ("download",), "tools/run_notebooks.py": ("run", "strip")}
SHELL = ("", "bash", "sh", "shell", "console")  # code-block languages that hold command lines
FLAG = re.compile(r"(?<![\w-])--[A-Za-z0-9][\w-]*")


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# ---- command lines and their flags ----------------------------------------------------------

def code_blocks(text: str) -> List[str]:
    """The shell code blocks (``` fences; python, text and other blocks are not command lines)."""
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)
            if lang in SHELL]


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
            command, rest = SCRIPTS[name], tokens[i + 1:]
        elif name.startswith("catdog-"):
            command, rest = ("-m", "paddle_catdog", name[len("catdog-"):]), tokens[i + 1:]
        elif tokens[i:i + 2] == ["-m", "paddle_catdog"] and i + 2 < len(tokens):
            command, rest = ("-m", "paddle_catdog", tokens[i + 2]), tokens[i + 3:]
        else:
            continue
        if rest and rest[0] in SUBCOMMANDS.get(command[-1], ()):
            command, rest = command + (rest[0],), rest[1:]
        return command, rest
    return None


def commands_in(text: str) -> Dict[Command, List[Tuple[str, List[str]]]]:
    """Command -> [(the line as written, its --flags)] for every line of ours in the code blocks.
    ``[--flag VALUE]`` (an optional part of a usage line) counts as ``--flag``."""
    found: Dict[Command, List[Tuple[str, List[str]]]] = {}
    for block in code_blocks(text):
        for tokens in command_lines(block):
            parsed = parse_command(tokens)
            if parsed:
                command, args = parsed
                words = [a.strip("[]").split("=", 1)[0] for a in args]
                found.setdefault(command, []).append((" ".join(tokens), [w for w in words if FLAG.fullmatch(w)]))
    return found


# Runs in one child Python: each command's real entry point (the script's file, or the package's
# __main__) with "--help", so Paddle is imported once, not once per command (a few seconds each).
# A command whose module is not installed (the notebook tool without the notebooks extra) answers
# "missing" instead of failing the others.
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
        except ImportError as e:
            code = "missing: " + str(e)
    out[" ".join(command)] = [code, buf.getvalue()]
print(json.dumps(out))
"""


def help_texts(commands: List[Command]) -> Dict[Command, Optional[str]]:
    """Each command's --help output (None where its module is not installed), run once, in one
    subprocess with sys.executable."""
    result = subprocess.run([sys.executable, "-c", HELP_DRIVER, json.dumps(commands)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.splitlines()[-1])
    out: Dict[Command, Optional[str]] = {}
    for command in commands:
        code, text = answers[" ".join(command)]
        if isinstance(code, str):
            out[command] = None
            continue
        assert code == 0, f"python {' '.join(command)} --help failed:\n{text}"
        out[command] = text
    return out


def unknown_flags(text: str, helps: Dict[Command, Optional[str]]) -> List[str]:
    """``line: --flag`` for every flag that the command's --help does not list (commands whose
    module is missing are left out: see test_every_flag_exists)."""
    bad = []
    for command, lines in commands_in(text).items():
        if helps[command] is None:
            continue
        known = set(FLAG.findall(helps[command]))
        bad += [f"{line}: {flag}" for line, flags in lines for flag in flags if flag not in known]
    return bad


@pytest.fixture(scope="module")
def texts() -> Dict[Path, str]:
    return {path: read(path) for path in PAGES}


@pytest.fixture(scope="module")
def helps(texts: Dict[Path, str]) -> Dict[Command, Optional[str]]:
    commands = {command for text in texts.values() for command in commands_in(text)}
    commands |= {("run_train.py",), ("-m", "paddle_catdog", "evaluate")}  # for the bogus-flag test
    return help_texts(sorted(commands))


def test_every_flag_exists(texts: Dict[Path, str], helps: Dict[Command, Optional[str]]) -> None:
    # the parser must see the commands the pages are about, or the check below checks nothing
    everywhere = {command for text in texts.values() for command in commands_in(text)}
    for command in [("run_train.py",), ("run_predict.py",), ("-m", "paddle_catdog", "evaluate"),
                    ("-m", "paddle_catdog", "export"), ("-m", "paddle_catdog", "data", "download"),
                    ("-m", "paddle_catdog", "demo"), ("tools/run_notebooks.py", "run")]:
        assert command in everywhere, f"no {' '.join(command)} command found in the docs"
    for readme in (README, README_CN):
        for command in [("run_train.py",), ("run_predict.py",)]:
            assert command in commands_in(texts[readme]), f"{rel(readme)}: no {command[0]} command"
    bad = [f"{rel(path)}: {line}" for path, text in texts.items() for line in unknown_flags(text, helps)]
    assert bad == []
    missing = sorted(" ".join(c) for c, h in helps.items() if h is None)
    if missing:
        pytest.skip(f"flags not checked for {missing}: the module is not installed (the notebooks extra)")


def test_the_check_catches_a_bogus_flag(helps: Dict[Command, Optional[str]]) -> None:
    text = ("```bash\npython run_train.py --data-dir x \\\n    --epochs 1 --no-such-flag  # --fine\n"
            "catdog-evaluate --weights w [--bogus=1]\n```\n"
            "```python\nrun_train.py --not-a-command-line\n```\n")
    assert unknown_flags(text, helps) == [
        "python run_train.py --data-dir x --epochs 1 --no-such-flag: --no-such-flag",
        "catdog-evaluate --weights w [--bogus=1]: --bogus"]


# ---- links and anchors ----------------------------------------------------------------------

FENCE = re.compile(r"^```.*?^```[^\n]*$", re.M | re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.I)


def prose(text: str) -> str:
    """The text outside code: fenced blocks and inline code spans removed."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def headings(text: str) -> List[str]:
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*$", FENCE.sub("", text), re.M)]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation (ASCII and full-width, backticks
    included) dropped, letters of any script, digits, ``_`` and ``-`` kept, spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(text: str) -> set:
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: Dict[str, int] = {}
    out = set()
    for heading in headings(text):
        base = slug(heading)
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def links(text: str) -> List[str]:
    body = prose(text)
    return LINK.findall(body) + HTML_LINK.findall(body)


def broken_links(path: Path, text: str) -> List[str]:
    """``target (reason)`` for every relative link of ``path`` that leads nowhere."""
    bad = []
    for target in links(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: ...: not ours to check
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if ROOT not in dest.parents and dest != ROOT:
            bad.append(f"{target} (outside the repository)")
        elif not dest.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(read(dest) if dest != path else text):
            bad.append(f"{target} (no such heading)")
    return bad


def test_every_relative_link_leads_somewhere(texts: Dict[Path, str]) -> None:
    assert sum(len(links(t)) for t in texts.values()) > 50  # the parser sees the links
    bad = [f"{rel(path)}: {b}" for path, text in texts.items() for b in broken_links(path, text)]
    assert bad == []


def test_the_link_check_catches_broken_links(tmp_path: Path) -> None:
    page = DOCS / "en" / "recipe.md"  # a real page, so relative links resolve as they would there
    text = ("# Title\n\n## Two words, here\n\n[ok](../zh/recipe.md) [ok](#two-words-here) "
            "[ok](../../README.md#tests) ![ok](../img/curves.png) [web](https://example.com/x.md)\n"
            "[gone](missing.md) ![gone](../img/none.png) [bad anchor](#nowhere) "
            "[bad anchor](data.md#nowhere) <img src=\"../gone.png\">\n"
            "```bash\n[not a link](nowhere.md)\n```\n`[not a link](nowhere.md)`\n")
    assert broken_links(page, text) == [
        "missing.md (no such file)", "../img/none.png (no such file)", "#nowhere (no such heading)",
        "data.md#nowhere (no such heading)", "../gone.png (no such file)"]
    assert slug("结果（2 核 CPU，无 GPU）") == "结果2-核-cpu无-gpu"
    assert slug("`--pretrained imagenet`: Paddle's ResNets") == "--pretrained-imagenet-paddles-resnets"


# ---- twins, and the READMEs as tables of contents ------------------------------------------

def test_each_page_has_its_twin_and_links_it() -> None:
    en = {p.name for p in (DOCS / "en").glob("*.md")}
    zh = {p.name for p in (DOCS / "zh").glob("*.md")}
    assert en, "no pages in docs/en"
    assert sorted(en - zh) == [] and sorted(zh - en) == [], "docs/en and docs/zh differ"
    assert sorted(p.name for p in DOCS.glob("*.md")) == [], "pages belong in docs/en or docs/zh"
    bad = []
    for name in sorted(en):
        top_en = "\n".join(read(DOCS / "en" / name).splitlines()[:5])
        top_zh = "\n".join(read(DOCS / "zh" / name).splitlines()[:5])
        if f"[简体中文](../zh/{name})" not in top_en:
            bad.append(f"docs/en/{name}: no link to its Chinese twin near the top")
        if f"[English](../en/{name})" not in top_zh:
            bad.append(f"docs/zh/{name}: no link to its English twin near the top")
    assert bad == []


def test_the_readmes_link_each_other_and_every_page(texts: Dict[Path, str]) -> None:
    assert "[简体中文](README_cn.md)" in "\n".join(texts[README].splitlines()[:5])
    assert "[English](README.md)" in "\n".join(texts[README_CN].splitlines()[:5])
    for readme, lang in ((README, "en"), (README_CN, "zh")):
        linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(texts[readme])}
        orphans = [rel(p) for p in sorted((DOCS / lang).glob("*.md")) if p.resolve() not in linked]
        assert orphans == [], f"{rel(readme)} does not link {orphans}"


def test_the_code_points_to_pages_that_exist() -> None:
    # help strings and error messages send the reader to a page: it must be there
    named = {m for path in sorted((ROOT / "paddle_catdog").rglob("*.py"))
             for m in re.findall(r"docs/(?:en|zh)/[\w-]+\.md", read(path))}
    assert len(named) >= 3  # the search sees them
    assert sorted(n for n in named if not (ROOT / n).is_file()) == []


# ---- README.md and README_cn.md ------------------------------------------------------------

def sections(text: str) -> Dict[str, str]:
    """``## Heading`` -> the text up to the next ``## `` (code blocks included)."""
    parts = re.split(r"^## +(.*)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_readme_first_screen_holds_the_commands_and_a_picture(texts: Dict[Path, str]) -> None:
    screen = "\n".join(texts[README].splitlines()[:FIRST_SCREEN])
    lines = [" ".join(t) for block in code_blocks(screen) for t in command_lines(block)]
    assert any(line.startswith("pip install") for line in lines), "no set-up command"
    assert any(parse_command(line.split()) and "run_train.py" in line for line in lines), "no train command"
    assert any("run_predict.py --img" in line for line in lines), "no predict command"
    assert re.search(r"!\[[^\]]*\]\([^)]+\.(png|jpg|gif)\)|<img\b", prose(screen)), "no picture"
    assert len(texts[README].splitlines()) < 200, "README.md is meant to be read in two minutes"


def test_readme_tests_section_is_what_ci_runs(texts: Dict[Path, str]) -> None:
    tests = sections(texts[README])["Tests"]
    first = command_lines(code_blocks(tests)[0])[0]
    assert " ".join(first) == "python -m pytest -q -ra"
    ci = [line.strip() for line in read(ROOT / ".ci" / "run").splitlines()]
    assert " ".join(first) in ci, ".ci/run does not run the README's test command"
    assert "python tools/run_notebooks.py run notebooks/*.ipynb -p DATA_DIR=../shared/data/dogs-vs-cats " \
           "--in-place" in tests, "the notebooks' re-run command left the Tests section"


def test_readme_cn_has_the_sections_of_a_paddle_project(texts: Dict[Path, str]) -> None:
    # PaddleClas README_ch.md: 简介, 特性, 快速开始, 文档教程, 许可证书, in this order
    wanted = ["简介", "特性", "快速开始", "文档教程", "许可证书"]
    found = [h for h in sections(texts[README_CN]) if h in wanted]
    assert found == wanted


def test_license_is_apache_and_the_readmes_point_to_it(texts: Dict[Path, str]) -> None:
    license_text = read(ROOT / "LICENSE")
    assert license_text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text  # the full text, not a notice
    assert re.search(r'^license\s*=\s*"Apache-2\.0"', read(ROOT / "pyproject.toml"), re.M)
    for readme, heading in ((README, "License"), (README_CN, "许可证书")):
        assert "LICENSE" in links(sections(texts[readme])[heading]), f"{rel(readme)}: {heading} has no link"


def test_shared_paths_only_in_the_readmes_tests_sections(texts: Dict[Path, str]) -> None:
    # ../shared exists only beside this repository's CI checkout; a newcomer's commands name their
    # own folder. The docs/ pages keep the commands of the recorded runs as they were run.
    bad = []
    for readme in (README, README_CN):
        section = ""
        for n, line in enumerate(texts[readme].splitlines(), 1):
            if line.startswith("## "):
                section = line
            if "../shared" in line and not ("测试" in section or "Tests" in section):
                bad.append(f"{rel(readme)}:{n} ({section or 'top'}): {line.strip()}")
    assert bad == []


# ---- the glossary (术语表) in the Chinese pages ---------------------------------------------

DRIFT = {  # a term the glossary does not use -> the one it does
    "跳跃连接": "残差连接", "捷径": "残差连接", "跳连": "残差连接", "批归一化": "批量归一化",
    "批大小": "批量大小", "余弦衰减": "余弦退火", "单元(?!格|测试)": "单元格"}  # 单元测试: unit tests
BARE_PADDLE = re.compile(r"(?<![A-Za-z])Paddle(?!Paddle|Clas|Hub| Inference| Serving| Lite)")


def glossary_problems(text: str) -> List[str]:
    """Where a Chinese page leaves the glossary: a drifting term, "epoch" in the prose other than
    once as 轮（epoch）, the framework called Paddle instead of 飞桨, or 飞桨 first met without
    （PaddlePaddle）. Code (blocks and spans) may say anything."""
    body = prose(text)
    problems = [f"{re.sub(r'[(].*', '', drift)} (write {term})" for drift, term in DRIFT.items()
                if re.search(drift, body)]
    if body.count("轮（epoch）") > 1:
        problems.append("轮（epoch） more than once (only at the first mention)")
    if re.search(r"epoch", body.replace("轮（epoch）", ""), re.I):
        problems.append("epoch in the prose (write 轮)")
    if BARE_PADDLE.search(body):
        problems.append("Paddle in the prose (write 飞桨)")
    if "飞桨" in body and body.index("飞桨") != body.find("飞桨（PaddlePaddle）"):
        problems.append("飞桨 first met without （PaddlePaddle）")
    return problems


def test_chinese_pages_keep_to_the_glossary(texts: Dict[Path, str]) -> None:
    chinese = [README_CN, *sorted((DOCS / "zh").glob("*.md"))]
    bad = {rel(p): glossary_problems(texts[p]) for p in chinese if glossary_problems(texts[p])}
    assert bad == {}


def test_the_glossary_check_finds_drift() -> None:
    assert glossary_problems("飞桨（PaddlePaddle）的残差连接，`--epochs` 与 Paddle Inference。每轮（epoch）") == []
    assert glossary_problems("跳跃连接让梯度直达。每个 epoch 用 Paddle 训练，飞桨很快。") == [
        "跳跃连接 (write 残差连接)", "epoch in the prose (write 轮)", "Paddle in the prose (write 飞桨)",
        "飞桨 first met without （PaddlePaddle）"]
    assert glossary_problems("第一个单元里。批大小 64。") == ["批大小 (write 批量大小)", "单元 (write 单元格)"]
