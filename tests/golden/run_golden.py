#!/usr/bin/env python3
"""Runs the real sluice binary on one configuration file and compares what it prints.

Invalid case:  run_golden.py SLUICE DIR NAME
    runs `SLUICE --check-config --config NAME.yaml` in DIR and requires exit code 1, nothing on
    stdout, and stderr equal, line for line, to DIR/NAME.expected.
Valid case:    run_golden.py SLUICE DIR FILE --valid [--env NAME=VALUE ...] [--allow TEXT ...]
    runs `SLUICE --check-config --config FILE` in DIR with those environment variables and
    requires exit code 0, `FILE: configuration is valid` on stdout and nothing on stderr;
    with --allow, warnings containing one of the TEXTs are tolerated (stdout then counts them).
Lint case:     run_golden.py SLUICE DIR NAME --lint
    runs `SLUICE --check-config --config NAME.yaml`, requiring exit code 0, the warnings on
    stderr equal to DIR/NAME.expected (its `note: ` lines not counted as warnings) and
    `NAME.yaml: configuration is valid, with N warnings`
    on stdout; then the same with --strict, requiring exit code 1 and nothing on stdout.
Test case:     run_golden.py SLUICE DIR NAME --test
    runs `SLUICE test --config NAME.yaml`; DIR/NAME.expected starts with `# exit N`, then holds
    what stderr and then stdout print.
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
    parser.add_argument("--allow", action="append", default=[])
    parser.add_argument("--lint", action="store_true")
    parser.add_argument("--test", action="store_true")
    args = parser.parse_args()

    env = dict(os.environ)
    # Nothing from the caller's environment may change what a golden file resolves to.
    env.pop("CREDENTIALS_DIRECTORY", None)
    env.pop("STATE_DIRECTORY", None)
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    config = args.name if args.valid else args.name + ".yaml"

    def run(*command):
        return subprocess.run(
            [args.sluice, *command], cwd=args.dir, env=env, capture_output=True, text=True,
            timeout=60,
        )

    def compare(what, expected, actual):
        if actual != expected:
            diff = difflib.unified_diff(expected, actual, "expected", "actual", lineterm="")
            failures.append(f"{what} differs:\n" + "\n".join(diff))

    failures = []
    if args.test:
        proc = run("test", "--config", config)
        with open(os.path.join(args.dir, args.name + ".expected"), encoding="utf-8") as f:
            header, *expected = f.read().splitlines()
        code = int(header.removeprefix("# exit "))
        if proc.returncode != code:
            failures.append(f"exit code {proc.returncode}, expected {code}")
        compare("stderr and stdout", expected, proc.stderr.splitlines() + proc.stdout.splitlines())
    elif args.lint:
        with open(os.path.join(args.dir, args.name + ".expected"), encoding="utf-8") as f:
            expected = f.read().splitlines()
        proc = run("--check-config", "--config", config)
        if proc.returncode != 0:
            failures.append(f"exit code {proc.returncode}, expected 0")
        # Notes (channels that cannot be backfilled) are printed beside the warnings, not counted.
        counted = [line for line in expected if not line.startswith("note: ")]
        valid = f"{config}: configuration is valid, with {len(counted)} warnings\n"
        if proc.stdout != valid:
            failures.append(f"stdout was {proc.stdout!r}, expected {valid!r}")
        compare("stderr", expected, proc.stderr.splitlines())
        strict = run("--check-config", "--strict", "--config", config)
        if strict.returncode != 1:
            failures.append(f"with --strict: exit code {strict.returncode}, expected 1")
        if strict.stdout:
            failures.append(f"with --strict: stdout was not empty: {strict.stdout!r}")
        compare("with --strict: stderr", expected, strict.stderr.splitlines())
    elif args.valid:
        proc = run("--check-config", "--config", config)
        if proc.returncode != 0:
            failures.append(f"exit code {proc.returncode}, expected 0")
        warnings = [w for w in proc.stderr.splitlines() if not w.startswith("note: ")]
        unexpected = [w for w in warnings if not any(a in w for a in args.allow)]
        if unexpected:
            failures.append("stderr was not empty:\n" + "\n".join(unexpected))
        valid = f"{config}: configuration is valid"
        if warnings:
            valid += f", with {len(warnings)} warning" + ("s" if len(warnings) > 1 else "")
        if proc.stdout != valid + "\n":
            failures.append(f"stdout was {proc.stdout!r}")
    else:
        proc = run("--check-config", "--config", config)
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
