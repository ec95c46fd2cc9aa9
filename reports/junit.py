"""A check verdict as JUnit XML, the test-report format every CI system reads.

One `<testsuite>` per gate, one `<testcase>` per check; a failed check carries a
`<failure>` whose message says what was measured against what limit.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from themis.common.atomic import write_atomic
from themis.planner.gates.verdict import Verdict


def junit_xml(verdict: Verdict) -> ET.ElementTree:
    """Build the XML tree (testsuites > testsuite per gate > testcase per check)."""
    root = ET.Element("testsuites", name="themis check", tests=str(len(verdict.checks)), failures=str(len(verdict.failures)))
    for gate in dict.fromkeys(c.gate for c in verdict.checks):
        checks = [c for c in verdict.checks if c.gate == gate]
        suite = ET.SubElement(
            root, "testsuite", name=f"themis.{gate}", tests=str(len(checks)), failures=str(sum(not c.passed for c in checks)), errors="0"
        )
        for check in checks:
            case = ET.SubElement(suite, "testcase", classname=f"themis.{gate}", name=check.name)
            if not check.passed:
                failure = ET.SubElement(case, "failure", message=check.explain(), type="CapacityBudgetExceeded" if gate == "capacity" else "LatencyRegression")
                failure.text = check.explain()
            else:
                ET.SubElement(case, "system-out").text = check.explain()
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(verdict: Verdict, path: str | Path) -> Path:
    """Write the verdict as JUnit XML atomically."""
    tree = junit_xml(verdict)
    return write_atomic(path, lambda tmp: tree.write(tmp, encoding="utf-8", xml_declaration=True))
