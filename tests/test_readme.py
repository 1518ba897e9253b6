import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.unit
def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    ci = (ROOT / ".ci/run").read_text().split("# test-command\n", 1)[1].strip()
    assert blocks[1].strip() == ci, "README's second command and .ci/run differ"
    assert blocks[0].strip().endswith("tooltoken chat")
