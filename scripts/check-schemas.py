#!/usr/bin/env python3
"""Checks the JSON Schemas in docs/schemas/ against their examples.

- each schema (command, result, status) must be a valid JSON Schema
  draft 2020-12, with `$id` equal to its file name;
- every docs/schemas/examples/<schema>.valid.*.json must pass its schema, and
  every <schema>.invalid.*.json must fail it; the examples inside each schema
  (`examples`) must pass too;
- with `--results FILE` (repeatable), every non-blank line of FILE, a JSON
  Lines file of result values (e.g. written by the tests), must pass
  result.schema.json.

A document that repeats a key in an object counts as invalid: the contract
rejects such commands, and a JSON Schema cannot see repeated keys (the parser
keeps one value). `format: date-time` is asserted (RFC 3339), not just
annotated.

Prints one line per file; exits 1 when anything does not match, 2 on usage
errors. Needs the `jsonschema` package (>= 4.0) from PyPI; scripts/validate-deploy.sh
runs it from its venv.
"""

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

try:
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import SchemaError, best_match
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("check-schemas: the jsonschema package (>= 4.0) is required: pip install jsonschema")

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "docs" / "schemas"
EXAMPLE_DIR = SCHEMA_DIR / "examples"
SCHEMA_NAMES = ("command", "result", "status")
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
EXAMPLE_NAME = re.compile(r"^(?P<schema>[a-z]+)\.(?P<expect>valid|invalid)\.[A-Za-z0-9-]+\.json$")


class NotJSON(ValueError):
    """The text is not one strict JSON document, or it repeats a key."""


def _no_repeated_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise NotJSON(f"repeated key {key!r} in an object")
        obj[key] = value
    return obj


def _no_constants(name):
    raise NotJSON(f"{name} is not JSON")


def parse_json(text):
    """Strict JSON: no repeated keys, no NaN/Infinity literals."""
    try:
        return json.loads(text, object_pairs_hook=_no_repeated_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        raise NotJSON(f"not JSON: {error}") from None


# RFC 3339 date-time, checked here so that the check does not silently
# depend on jsonschema's optional format packages.
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$"
)


def _is_date_time(value):
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.match(value)
    if not match:
        return False
    year, month, day, hour, minute, second = (int(group) for group in match.groups()[:6])
    try:
        datetime.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    if second > 60:  # 60: a leap second
        return False
    offset_hours, offset_minutes = match.group(8), match.group(9)
    return offset_hours is None or (int(offset_hours) <= 23 and int(offset_minutes) <= 59)


FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checks("date-time")(_is_date_time)


def _json_path(parts):
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)


def describe(error, document):
    """One line: the message (long values elided), where, and which schema rule."""
    path = list(error.absolute_path)
    message = error.message
    if error.validator is None:
        # A `false` subschema ("properties": {"jwt": false}): jsonschema reports
        # neither the property nor its path, only the value. Name the property.
        parent = document
        for part in path:
            parent = parent[part]
        names = [key for key, value in parent.items() if value is error.instance] if isinstance(parent, dict) else []
        if names:
            path.append(names[0])
            message = f"{names[0]!r} is not allowed here"
    if len(message) > 160:
        message = message[:70] + " … " + message[-70:]
    rule = "/".join(str(part) for part in error.absolute_schema_path)
    return f"{message} (at {_json_path(path)}; schema {rule or '/'})"


def first_problem(validator, document):
    """None when the document is valid, else a one-line reason."""
    error = best_match(validator.iter_errors(document))
    return None if error is None else describe(error, document)


def load_validators(report):
    validators = {}
    for name in SCHEMA_NAMES:
        path = SCHEMA_DIR / f"{name}.schema.json"
        label = path.relative_to(ROOT)
        try:
            schema = parse_json(path.read_text(encoding="utf-8"))
            if schema.get("$schema") != DRAFT_2020_12:
                raise ValueError(f"$schema must be {DRAFT_2020_12}")
            if schema.get("$id") != path.name:
                raise ValueError(f"$id must be {path.name!r}")
            Draft202012Validator.check_schema(schema)
        except SchemaError as error:
            report(False, label, f"not a valid draft 2020-12 schema: {error.message} (at {error.json_path})")
            continue
        except (OSError, ValueError) as error:
            report(False, label, f"not a valid draft 2020-12 schema: {error}")
            continue
        validator = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
        validators[name] = validator
        problems = [problem for problem in (first_problem(validator, example) for example in schema.get("examples", [])) if problem]
        if problems:
            report(False, label, f"valid draft 2020-12 schema, but one of its own examples fails: {problems[0]}")
        else:
            report(True, label, f"valid draft 2020-12 schema ({len(schema.get('examples', []))} embedded examples pass)")
    return validators


def check_examples(validators, report):
    seen = {name: {"valid": 0, "invalid": 0} for name in SCHEMA_NAMES}
    for path in sorted(EXAMPLE_DIR.iterdir()):
        label = path.relative_to(ROOT)
        match = EXAMPLE_NAME.match(path.name)
        if not match or match["schema"] not in SCHEMA_NAMES:
            report(False, label, "unexpected file: examples are named <command|result|status>.<valid|invalid>.<name>.json")
            continue
        name, expect = match["schema"], match["expect"]
        seen[name][expect] += 1
        if name not in validators:
            report(False, label, f"{name}.schema.json could not be loaded")
            continue
        try:
            problem = first_problem(validators[name], parse_json(path.read_text(encoding="utf-8")))
        except NotJSON as error:
            problem = str(error)
        if expect == "valid":
            report(problem is None, label, "valid" if problem is None else f"rejected, expected valid: {problem}")
        else:
            report(problem is not None, label, f"rejected: {problem}" if problem else "accepted, expected to be rejected")
    for name, counts in seen.items():
        for expect, count in counts.items():
            if count == 0:
                report(False, EXAMPLE_DIR.relative_to(ROOT), f"no {name}.{expect}.*.json example")


def check_results_file(path, validator, report):
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        report(False, path, f"cannot read: {error}")
        return
    count = bad = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        count += 1
        try:
            problem = first_problem(validator, parse_json(line))
        except NotJSON as error:
            problem = str(error)
        if problem:
            bad += 1
            report(False, f"{path}:{number}", f"result rejected: {problem}")
    if bad:
        report(False, path, f"{bad} of {count} results fail result.schema.json")
    else:
        report(True, path, f"{count} results pass result.schema.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results",
        metavar="FILE",
        action="append",
        default=[],
        help="a JSON Lines file of result values to validate against result.schema.json (repeatable)",
    )
    args = parser.parse_args()

    failures = 0

    def report(ok, label, text):
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'ok  ' if ok else 'FAIL'}  {label}: {text}")

    # The date-time check must really be asserted, or date examples pass vacuously.
    assert FORMAT_CHECKER.conforms("2024-11-22T09:09:59.301Z", "date-time")
    assert not FORMAT_CHECKER.conforms("2024-11-31T09:09:59Z", "date-time")

    validators = load_validators(report)
    check_examples(validators, report)
    for path in args.results:
        if "result" in validators:
            check_results_file(path, validators["result"], report)
        else:
            report(False, path, "result.schema.json could not be loaded")
    if failures:
        print(f"check-schemas: {failures} mismatch(es)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
