"""The tool that stores the outputs nbval compares: only marked cells keep outputs."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from xcatrec.book import main, store_checked_outputs


def test_only_checked_cells_keep_their_outputs(tmp_path):
    (tmp_path / "here.txt").write_text("local file")
    nb = new_notebook(cells=[new_markdown_cell("# title"),
                             new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(open('here.txt').read())"),
                             new_code_cell("print('not checked')"),
                             new_code_cell("  # NBVAL_CHECK_OUTPUT\n6 * 7")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    assert store_checked_outputs(path) == 2  # runs in the notebook's own folder (it read here.txt)
    cells = json.loads(path.read_text())["cells"]
    assert "".join(cells[1]["outputs"][0]["text"]) == "local file\n"
    assert cells[2]["outputs"] == [] and cells[2]["execution_count"] is None
    assert "".join(cells[3]["outputs"][0]["data"]["text/plain"]) == "42"
    assert all("execution" not in c["metadata"] for c in cells)


def test_a_failing_chapter_is_left_unchanged(tmp_path):
    nb = new_notebook(cells=[new_code_cell("raise ValueError('boom')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    before = path.read_text()
    with pytest.raises(Exception, match="boom"):
        store_checked_outputs(path)
    assert path.read_text() == before


def test_usage(capsys):
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "NBVAL_CHECK_OUTPUT" in capsys.readouterr().out
