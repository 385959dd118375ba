#!/usr/bin/env python3
"""Runs the real sluice binary on one configuration file and compares what it prints.

Invalid case:  run_golden.py SLUICE DIR NAME
    runs `SLUICE --check-config --config NAME.yaml` in DIR and requires exit code 1, nothing on
    stdout, and stderr equal, line for line, to DIR/NAME.expected.
Valid case:    run_golden.py SLUICE DIR FILE --valid [--env NAME=VALUE ...]
    runs `SLUICE --check-config --config FILE` in DIR with those environment variables and
    requires exit code 0 and `FILE: configuration is valid` on stdout.
"""
import argparse
import difflib
import os
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("sluice")
    parser.add_argument("dir")
    parser.add_argument("name")
    parser.add_argument("--valid", action="store_true")
    parser.add_argument("--env", action="append", default=[])
    args = parser.parse_args()

    env = dict(os.environ)
    # Nothing from the caller's environment may change what a golden file resolves to.
    env.pop("CREDENTIALS_DIRECTORY", None)
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    config = args.name if args.valid else args.name + ".yaml"
    proc = subprocess.run(
        [args.sluice, "--check-config", "--config", config],
        cwd=args.dir, env=env, capture_output=True, text=True, timeout=60,
    )

    failures = []
    if args.valid:
        if proc.returncode != 0:
            failures.append(f"exit code {proc.returncode}, expected 0")
        if proc.stdout != f"{config}: configuration is valid\n":
            failures.append(f"stdout was {proc.stdout!r}")
        if proc.stderr:
            failures.append(f"stderr was not empty:\n{proc.stderr}")
    else:
        with open(os.path.join(args.dir, args.name + ".expected"), encoding="utf-8") as f:
            expected = f.read().splitlines()
        actual = proc.stderr.splitlines()
        if proc.returncode != 1:
            failures.append(f"exit code {proc.returncode}, expected 1")
        if proc.stdout:
            failures.append(f"stdout was not empty: {proc.stdout!r}")
        if actual != expected:
            diff = difflib.unified_diff(expected, actual, "expected", "actual", lineterm="")
            failures.append("stderr differs:\n" + "\n".join(diff))

    for failure in failures:
        print(f"{args.name}: {failure}", file=sys.stderr)
    if not failures:
        print(f"{args.name}: ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
