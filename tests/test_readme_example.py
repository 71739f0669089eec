"""The README's recipe for adding an estimator works as written: the module between the
`estimator-example` markers is saved as my_estimators.py and measured with the README's command,
through `--import`, with no file of this package edited; and it is not degenerate at its minimum S."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- estimator-example -->\s*```python\n(.*?)```", text, re.S)
    assert block, "README.md lost its estimator-example block"
    return block.group(1)


def readme_command() -> list[str]:
    text = (ROOT / "README.md").read_text()
    after = text.split("<!-- /estimator-example -->", 1)[1]
    command = re.search(r"```bash\n(.*?)```", after, re.S).group(1).replace("\\\n", " ")
    return shlex.split(command)


def test_the_readme_estimator_runs_as_written(tmp_path):
    (tmp_path / "my_estimators.py").write_text(readme_example())
    argv = readme_command()
    assert argv[:3] == ["python", "-m", "benchmarks.variance"] and "--import" in argv
    # A smaller N than the default keeps the test short; everything else as written.
    out = tmp_path / "run"
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, *argv[1:], "--estimates", "2000", "--no-report", "--out", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    frame = pd.read_csv(out / "results.csv")
    mine = frame[frame["estimator"] == "reinforce_shrunk_loo"]
    assert set(mine["n_samples"]) == {2, 4} and len(mine) == 3 * 2 * frame["objective"].nunique()
    # Not degenerate: a real spread and a gradient pointing the right way at its minimum S.
    at_two = mine[mine["n_samples"] == 2]
    assert (at_two["variance_trace_lo"] > 0).all() and (at_two["cosine"] > 0).all(), at_two
