#!/usr/bin/env python3
"""Sums test cases over every suite in one or more of Meson's JUnit logs
(e.g. the normal and the sanitizer build) and prints the line CI reads:
`N passed, N failed, N skipped`. Exits 1 if anything failed, a log is
missing, or nothing ran."""
import sys
import xml.etree.ElementTree as ET

def main(paths):
    passed = failed = skipped = 0
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            print(f"count_results: {path}: {e}", file=sys.stderr)
            failed += 1
            continue
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
