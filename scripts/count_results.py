#!/usr/bin/env python3
"""Sums test cases over every suite in one or more of Meson's JUnit logs
(e.g. the normal and the sanitizer build) and prints the line CI reads:
`N passed, N failed, N skipped`. Exits 1 if anything failed, a log is
missing, or nothing ran.

A GoogleTest binary that times out or crashes leaves no cases of its own in
the JUnit log, so Meson's testlog.json beside it is read too: every test it
records as failed, timed out or in error counts as one failure unless the
JUnit log already holds a failing case for it."""
import json
import os
import sys
import xml.etree.ElementTree as ET

BAD_RESULTS = {"FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"}


def unreported_failures(junit_path, root):
    """Tests testlog.json says went wrong that the JUnit log shows no failure for."""
    json_path = os.path.join(os.path.dirname(junit_path), "testlog.json")
    failing = set()
    for suite in root.iter("testsuite"):
        if any(c.tag in ("failure", "error") for case in suite.iter("testcase") for c in case):
            failing.add(suite.get("name"))
        for case in suite.iter("testcase"):
            if any(c.tag in ("failure", "error") for c in case):
                failing.add(case.get("name"))
    missed = []
    try:
        with open(json_path) as f:
            for line in f:
                entry = json.loads(line)
                if entry.get("result") not in BAD_RESULTS:
                    continue
                name = entry.get("name", "")
                short = name.split(" / ")[-1]
                if name not in failing and short not in failing:
                    missed.append(f"{name}: {entry.get('result')}")
    except OSError:
        pass  # older logs: the JUnit cases are all there is
    return missed

def main(paths):
    passed = failed = skipped = 0
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            print(f"count_results: {path}: {e}", file=sys.stderr)
            failed += 1
            continue
        for miss in unreported_failures(path, root):
            print(f"count_results: {miss}", file=sys.stderr)
            failed += 1
        for case in root.iter("testcase"):
            kinds = {child.tag for child in case}
            if kinds & {"failure", "error"}:
                failed += 1
            elif "skipped" in kinds:
                skipped += 1
            else:
                passed += 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0

if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: count_results.py JUNIT_XML...", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
