"""README.md and docs/*.md stay true to the CLI and to the file tree.

1. Every ``kequireg ...`` command line in a code block (shell, text, a block without a language:
   every fenced block but those of another language's source, ``NOT_COMMANDS``: Python, TOML, JSON,
   YAML) names commands and options that exist: the command path is
   resolved through the real click group ``cli.main.main`` (lazy, nothing is invoked and keras is
   not imported), and every ``-x`` / ``--flag`` must be an option of the (sub)command it follows.
   Argument values are not checked, so placeholders (``...``, ``<case>``, ``RUN|FILE.keras``) are
   fine. Rules of the extraction:

   - backslash-continued lines are joined; ``&&`` / ``;`` split a line into commands;
   - a command starts with ``kequireg`` after an optional ``$ `` prompt, ``VAR=value`` assignments
     and a launcher (``srun ...``, ``mpirun ...``, ``env``, ``time``);
   - a trailing ``# comment`` is dropped; so is what follows a pipe or a redirection;
   - ``[--flag VALUE]`` (optional parts of a synopsis) are checked like ``--flag VALUE``, also on an
     indented line of their own below the command;
   - ``kequireg bench a | b | c`` lists alternative subcommands: each is checked.

2. Every relative Markdown link or image ``[text](path)`` / ``[text](path#anchor)`` /
   ``[text](#anchor)`` points to an existing file, and the anchor to a heading of the target
   (GitHub's slugs: lowercase, punctuation other than ``-`` and ``_`` dropped, spaces -> ``-``,
   ``-1``, ``-2`` ... for repeated headings).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cli.main import main as CLI

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_COMMANDS = {"python", "py", "pycon", "toml", "json", "yaml", "yml"}  # blocks whose lines are not shell commands
LAUNCHERS = {"srun", "mpirun", "mpiexec", "env", "time", "nohup", "exec"}
UNBALANCED = "<unbalanced quotes>"
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()


# ---------------------------------------------------------------------------------------------
# Markdown structure


def code_blocks(text: str):
    """Yield ``(language, [(line number, line), ...])`` for every fenced code block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, body = m.group(2), m.group(3).lower(), []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append((i + 1, lines[i]))
            i += 1
        yield lang, body
        i += 1


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with their line numbers."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            out.append((number, line))
    return out


# ---------------------------------------------------------------------------------------------
# 1. command lines


def strip_comment(line: str) -> str:
    """Drop a ``# comment`` that starts a word outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def logical_lines(body: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join backslash-continued lines (comments dropped first); the line number is the first one's.

    A line starting with ``[-`` continues the previous one too (the optional parts of a synopsis).
    """
    out, start, parts = [], None, []
    for number, line in body:
        line = strip_comment(line)
        if start is None and out and line.strip().startswith("[-"):  # a synopsis's indented optional part
            out[-1] = (out[-1][0], f"{out[-1][1]} {line.strip()}")
            continue
        if start is None:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        out.append((start, " ".join(p.strip() for p in parts)))
        start, parts = None, []
    if parts:
        out.append((start, " ".join(p.strip() for p in parts)))
    return out


def kequireg_words(command: str) -> list[str] | None:
    """The words after ``kequireg`` if ``command`` runs kequireg, else None."""
    command = command.strip()
    if command.startswith("$ "):
        command = command[2:]
    if "kequireg" not in command.split():
        return None  # not ours (and maybe not shell at all: a diagram, prose with an apostrophe)
    try:
        words = shlex.split(command)
    except ValueError:  # an unbalanced quote: reported by the test, names checked word by word
        return [UNBALANCED, *command.split()[command.split().index("kequireg") + 1:]]
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
        words.pop(0)
    if words and words[0] in LAUNCHERS and "kequireg" in words:
        words = words[words.index("kequireg"):]
    if not words or words[0] != "kequireg":
        return None
    return [w.strip("[]") if w.startswith("[") or w.endswith("]") else w for w in words[1:]]


def doc_commands(path: Path) -> list[tuple[str, str, list[str]]]:
    """``(where, command line, words after kequireg)`` for every kequireg command in a code block."""
    found = []
    for lang, body in code_blocks(path.read_text(encoding="utf-8")):
        if lang in NOT_COMMANDS:
            continue
        for number, line in logical_lines(body):
            for command in re.split(r"\s*(?:&&|;|\|\|)\s*", line):
                words = kequireg_words(command)
                if words is not None:
                    found.append((f"{rel(path)}:{number}", command.strip(), words))
    return found


def is_option(word: str) -> bool:
    return word.startswith("-") and word != "-" and not re.match(r"-\.?\d", word)


def is_redirection(word: str) -> bool:
    return bool(re.fullmatch(r"\d?>>?(&\d)?|&>|<", word)) or (word.startswith(">") and word != ">")


def option_map(command: click.Command, ctx: click.Context) -> dict[str, click.Parameter]:
    names = {}
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                names[name] = param
    # click caches a command's help option the first time it is asked for it (another test may have
    # done so under other help names); a real `kequireg ...` process takes the group's names (-h, --help)
    if command.add_help_option:
        help_option = next((p for p in names.values() if getattr(p, "is_flag", False) and "--help" in p.opts), None)
        for name in ctx.help_option_names:
            names.setdefault(name, help_option or click.Option([name], is_flag=True, expose_value=False))
    return names


def takes_value(param: click.Parameter) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False)) and param.nargs != 0


def check_words(command: click.Command, ctx: click.Context, words: list[str]) -> list[str]:
    """Problems with ``words`` given to ``command`` (its name is ``ctx.command_path``)."""
    problems, options, i = [], option_map(command, ctx), 0
    while i < len(words):
        word = words[i]
        if word == "|" and not isinstance(command, click.Group) or is_redirection(word):
            break  # the rest is another program's (or a file name)
        if is_option(word):
            name = word.split("=", 1)[0]
            param = options.get(name)
            if param is None:
                problems.append(f"`{ctx.command_path}` has no option {name} (it has: {', '.join(sorted(options))})")
            elif "=" not in word and takes_value(param) and not param.is_bool_flag:
                i += max(param.nargs, 1)  # skip the value(s): a value is never a subcommand name
            i += 1
            continue
        if isinstance(command, click.Group):
            alternatives = word.split("|")  # `bench a|b` as well as `bench a | b`
            i += 1
            while i + 1 < len(words) and words[i] == "|":
                alternatives.append(words[i + 1])
                i += 2
            for name in alternatives:
                sub = command.get_command(ctx, name)
                if sub is None:
                    problems.append(f"`{ctx.command_path}` has no command {name!r} "
                                    f"(it has: {', '.join(command.list_commands(ctx))})")
                    continue
                sub_ctx = click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
                problems += check_words(sub, sub_ctx, words[i:])
            return problems
        i += 1  # an argument value: not checked
    return problems


def check_command_line(words: list[str]) -> list[str]:
    return check_words(CLI, click.Context(CLI, info_name="kequireg", **CLI.context_settings), words)


COMMANDS = [c for path in DOCS for c in doc_commands(path)]


@pytest.mark.parametrize("where, line, words", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_doc_command_line_names_real_commands_and_options(where, line, words):
    problems = ["unbalanced quotes"] if words[:1] == [UNBALANCED] else []
    problems += check_command_line([w for w in words if w != UNBALANCED])
    assert not problems, f"{where}: {line}\n  " + "\n  ".join(problems)


def test_every_doc_is_scanned_and_commands_are_found():
    assert {rel(p) for p in DOCS} >= {"README.md", "docs/getting-started.md", "docs/training.md",
                                      "docs/evaluation.md"}
    per_file = {rel(p): len(doc_commands(p)) for p in DOCS}
    # the README is a front door (a quick start and a one-line tour), the reference is in docs/
    assert per_file["README.md"] >= 8 and per_file["docs/getting-started.md"] >= 8, per_file
    assert per_file["docs/evaluation.md"] >= 10 and sum(per_file.values()) >= 100, per_file
    ctx = click.Context(CLI, info_name="kequireg")
    every_command = set(CLI.list_commands(ctx))
    assert every_command >= {"synth", "preprocess", "info", "splits", "train", "predict", "evaluate", "suggest",
                             "export", "experiment", "report", "demo", "bench"}, every_command
    # every top-level command is shown in some code block (so each one is checked), and the README's tour
    # shows each one too (a new command has to join the tour)
    found = {words[0] for _, _, words in COMMANDS if words}
    in_readme = {words[0] for where, _, words in COMMANDS if words and where.startswith("README.md:")}
    assert found >= every_command, every_command - found
    assert in_readme >= every_command, every_command - in_readme


def test_the_docs_check_does_not_import_keras():
    """Resolving every command and subcommand stays cheap: no keras, tensorflow, jax or torch."""
    code = (
        "import sys, click\n"
        "from cli.main import main\n"
        "ctx = click.Context(main, info_name='kequireg')\n"
        "for name in main.list_commands(ctx):\n"
        "    cmd = main.get_command(ctx, name)\n"
        "    if isinstance(cmd, click.Group):\n"
        "        sub = click.Context(cmd, info_name=name, parent=ctx)\n"
        "        [cmd.get_command(sub, n) for n in cmd.list_commands(sub)]\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_extraction_rules():
    body = list(enumerate([
        "$ KERAS_BACKEND=jax kequireg train --data x.h5 \\",
        "    --labeled 0.1   # a comment with --bogus",
        "pip install . && kequireg demo",
        "srun --nodes 2 \\",
        "    kequireg train --distributed",
        "kequireg bench augment | grid",
        "python -c 'print(1)'  # kequireg info",
        "kequireg info s.h5 --json | jq .cases",
        "kequireg bench grid --max-steps 4",
        "                    [--workers 2]",
    ], 1))
    lines = logical_lines(body)
    words = [kequireg_words(c) for _, line in lines for c in re.split(r"\s*(?:&&|;|\|\|)\s*", line)]
    words = [w for w in words if w is not None]
    assert words == [
        ["train", "--data", "x.h5", "--labeled", "0.1"],
        ["demo"],
        ["train", "--distributed"],
        ["bench", "augment", "|", "grid"],
        ["info", "s.h5", "--json", "|", "jq", ".cases"],
        ["bench", "grid", "--max-steps", "4", "--workers", "2"],
    ]
    for w in words:
        assert check_command_line(w) == [], w
    assert kequireg_words("kequireg bench train-step [--model fc-densenet56 --size 64]") == [
        "bench", "train-step", "--model", "fc-densenet56", "--size", "64"]


def test_the_checker_catches_wrong_names():
    assert check_command_line(["train", "-h"]) == []
    assert check_command_line(["bench", "augment", "-h"]) == []
    assert check_command_line(["--version"]) == []
    assert any("no option --labelled" in p for p in check_command_line(["train", "--labelled", "0.1"]))
    assert any("no command 'trian'" in p for p in check_command_line(["trian"]))
    assert any("no command 'nope'" in p for p in check_command_line(["bench", "augment", "|", "nope"]))
    assert any("`kequireg bench augment` has no option --data" in p
               for p in check_command_line(["bench", "augment", "--data", "x"]))


def test_a_made_up_option_in_a_doc_fails_the_check(tmp_path):
    """The whole path, Markdown to verdict: a bad option, a bad subcommand and a text block are caught."""
    doc = tmp_path / "doc.md"
    doc.write_text("# Doc\n\n```bash\n$ KERAS_BACKEND=jax kequireg evaluate runs/a --tta 4 \\\n    --tta-polcy flips > out.txt\n"
                   "kequireg predict a b c --tta 2 | tee log && kequireg bench warp\n```\n\n"
                   "```text\nkequireg train --data x.h5 --labelled 0.1\n```\n\n"
                   "```python\nkequireg = 'not a command --bogus'\n```\n", encoding="utf-8")
    found = doc_commands(doc)
    assert [where.rsplit(":", 1)[1] for where, _, _ in found] == ["4", "6", "6", "10"]
    problems = {where: check_command_line(words) for where, _, words in found}
    assert any("`kequireg evaluate` has no option --tta-polcy" in p for p in problems[f"{rel(doc)}:4"])
    assert any("no command 'warp'" in p for p in problems[f"{rel(doc)}:6"])
    assert any("`kequireg train` has no option --labelled" in p for p in problems[f"{rel(doc)}:10"])


def test_the_readme_test_command_is_what_ci_runs():
    """.ci/run runs the README's test command verbatim (the onnx extra included, so the ONNX export test runs)."""
    marker = "# --- the README's test command, verbatim ---"
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    ci_command = lines[lines.index(marker) + 1].strip()
    readme = [line for _, body in code_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
              for _, line in body if "tests/run_all.py" in line]
    assert len(readme) == 1 and readme[0].endswith(ci_command), (readme, ci_command)
    assert ".[jax,torch,onnx,test]" in ci_command


# ---------------------------------------------------------------------------------------------
# 2. relative links


def github_slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images -> their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<![\w])_+|_+(?![\w])", "", text)  # _emphasis_, not snake_case
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in "-_ " or ch.isspace())
    return re.sub(r"\s", "-", text)


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    text = path.read_text(encoding="utf-8")
    for _, line in prose_lines(text):
        m = re.match(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    out.update(re.findall(r"""<a\s+(?:name|id)=["']([^"']+)["']""", text))
    return out


LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")


def doc_links(path: Path) -> list[tuple[int, str]]:
    """``(line number, target)`` of every Markdown link outside code (multi-line link texts too)."""
    lines = prose_lines(path.read_text(encoding="utf-8"))
    # code spans cannot hold links: blank their contents (keeping the line structure)
    joined = "\n".join(line for _, line in lines)
    joined = re.sub(r"(`+)((?:(?!\n\s*\n).)+?)\1",
                    lambda m: m.group(1) + re.sub(r"[^\n]", "x", m.group(2)) + m.group(1), joined, flags=re.S)
    numbers = [n for n, _ in lines]
    out = []
    for m in LINK.finditer(joined):
        out.append((numbers[joined.count("\n", 0, m.start(2))], m.group(2)))
    for index, line in enumerate(joined.split("\n")):
        m = REFERENCE.match(line)
        if m:
            out.append((numbers[index], m.group(1)))
    return out


def link_problem(path: Path, target: str) -> str | None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
        return None  # http:, https:, mailto: ...
    file_part, _, anchor = target.partition("#")
    file_part = file_part.split("?", 1)[0]
    dest = (path.parent / file_part).resolve() if file_part else path
    if not dest.exists():
        return f"{target}: no file {rel(dest)}"
    if anchor:
        if dest.is_dir() or dest.suffix.lower() != ".md":
            return f"{target}: an anchor into a file that is not Markdown"
        if anchor.lower() not in anchors(dest):
            return f"{target}: no heading #{anchor} in {rel(dest)}"
    return None


@pytest.mark.parametrize("path", DOCS, ids=[rel(p) for p in DOCS])
def test_relative_links_resolve(path):
    problems = [f"{rel(path)}:{n}: {p}" for n, t in doc_links(path) if (p := link_problem(path, t))]
    assert not problems, "\n".join(problems)


def test_slug_rules():
    assert github_slug("Set up (two commands, fresh machine, Python ≥ 3.10)") == (
        "set-up-two-commands-fresh-machine-python--310")
    assert github_slug("Cross-validation folds (`--folds K`, `kequireg splits`)") == (
        "cross-validation-folds---folds-k-kequireg-splits")
    assert github_slug("snake_case and *emphasis*") == "snake_case-and-emphasis"
    assert any(t == "docs/data.md" for _, t in doc_links(ROOT / "README.md"))


def test_the_link_checker_catches_broken_links(tmp_path):
    (tmp_path / "a.md").write_text(
        "# Title\n\n## Usage (`--x`)\n\n## Usage (`--x`)\n\n```bash\n# not a heading\n```\n"
        "[ok](b.md#b-heading) [ok](#usage---x-1) [ok](#title) [web](https://example.org/x.md)\n"
        "[bad](missing.md) [bad](b.md#nope) [bad](#not-a-heading) `[code](missing2.md)`\n"
        "[multi\nline](c.md)\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("### B heading\n", encoding="utf-8")
    path = tmp_path / "a.md"
    problems = {t: link_problem(path, t) for _, t in doc_links(path)}
    assert [t for t, p in problems.items() if p] == ["missing.md", "b.md#nope", "#not-a-heading", "c.md"]
    assert dict(doc_links(path))[13] == "c.md"  # reported on the line where the target is
