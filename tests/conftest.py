import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402
from helpers import tiny_encoder  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    """A random tiny BERT saved as a plain HF folder (one per test module)."""
    d = tmp_path_factory.mktemp("m")
    tiny_encoder("bert", d)
    return str(d / "bert")
