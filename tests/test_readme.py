"""The README's code blocks: every ```python block runs as written; the others are skipped, each with its reason.

A python block that must not run here is preceded by ``<!-- not run in tests: <reason> -->`` in the README.
"""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(
    r"(?:<!-- not run in tests: (?P<reason>[^>]*?) -->\n)?^```(?P<lang>\w*)\n(?P<code>.*?)^```$", re.M | re.S
)
NOT_PYTHON = {
    "bash": "shell commands: they start searches, evaluations or make targets (minutes each), covered by the apps' "
    "and reproduce's own tests",
    "": "a folder layout, not code",
}


def code_blocks() -> list:
    blocks, text = [], README.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        line = text[: match.start("code")].count("\n") + 1
        lang, reason = match["lang"], match["reason"]
        if lang != "python":
            reason = NOT_PYTHON.get(lang, f"a {lang} block, not python")
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        blocks.append(pytest.param(match["code"], id=f"README.md:{line}:{lang or 'text'}", marks=marks))
    return blocks


def test_the_readme_has_python_blocks():
    assert sum("python" in param.id for param in code_blocks()) >= 2


@pytest.mark.parametrize("code", code_blocks())
def test_readme_block_runs_as_written(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
