"""The example of each page in docs/integrations runs and prints the measured sparsity of each phase:
0 dense, 0.5 sparse, lower again after re-dense."""

import importlib.util
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "integrations"
PAGES = {"plain-loop.md": None, "lightning.md": "lightning", "huggingface.md": "transformers"}


def _example(page: str) -> str:
    text = (DOCS / page).read_text()
    section = text[text.index("## Example") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize("page", PAGES)
def test_the_page_example_trains_dense_sparse_redense(page, capsys):
    if PAGES[page] and importlib.util.find_spec(PAGES[page]) is None:
        pytest.skip(f"{PAGES[page]} is an optional extra (pip install -e '.[{page.removesuffix('.md')}]')")
    exec(compile(_example(page), str(DOCS / page), "exec"), {"__name__": "docs_example"})
    lines = re.findall(r"^(Dense|Sparse|Re-dense): sparsity ([0-9.]+)$", capsys.readouterr().out, re.M)
    assert [label for label, _ in lines] == ["Dense", "Sparse", "Re-dense"]
    dense, sparse, redense = (float(v) for _, v in lines)
    assert dense == 0.0 and sparse == pytest.approx(0.5, abs=0.01) and redense < sparse
