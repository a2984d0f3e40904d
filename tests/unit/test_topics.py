"""Topic names are defined once, in ``pinstack_common.events.topics``, and used from there."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pinstack_common.events import ALL_TOPICS

REPO = Path(__file__).resolve().parents[2]
# A topic name spelled out in code: "pinstack.<domain>.events.v1".
SPELLED = re.compile(r"""["']pinstack\.[a-z]+\.events\.v\d+""")


def test_no_source_module_spells_a_topic_name() -> None:
    spelled = [
        f"{path.relative_to(REPO)}:{number}"
        for pattern in ("services/*/src/**/*.py", "operator/src/**/*.py")
        for path in sorted(REPO.glob(pattern))
        if "_pb2" not in path.name
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SPELLED.search(line)
    ]
    assert spelled == [], "import the constant from pinstack_common.events.topics instead"


def test_the_example_stack_provisions_the_defined_topics() -> None:
    stack = yaml.safe_load((REPO / "manifests/examples/pinstackstack.yaml").read_text())
    assert sorted(topic["name"] for topic in stack["spec"]["topics"]) == sorted(ALL_TOPICS)
