#!/usr/bin/env python3
"""Validates real API answers against the OpenAPI document (openapi-core from PyPI).

usage: openapi_check.py SPEC ANSWERS.json [--partial]
ANSWERS.json: [{"method": "GET", "path": "/api/v1/status", "status": 200, "body": "..."}, ...]
Fails (exit 1) when the spec is invalid, an answer does not validate (undocumented status, field or
type), or (without --partial) an operation of the spec was never exercised.
"""
import json
import re
import sys

from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

SERVER = "http://192.168.1.1:8780"


def main():
    spec_path, answers_path = sys.argv[1], sys.argv[2]
    partial = "--partial" in sys.argv[3:]
    openapi = OpenAPI.from_file_path(spec_path)  # also validates the document itself
    answers = json.load(open(answers_path))
    failures = []
    exercised = set()
    for a in answers:
        req = MockRequest(SERVER, a["method"].lower(), a["path"])
        resp = MockResponse(
            data=a["body"].encode(), status_code=a["status"], content_type="application/json"
        )
        try:
            openapi.validate_response(req, resp)
        except OperationNotFound:
            # A method the path does not offer: 405 with the documented Error document.
            if a["status"] != 405:
                failures.append(f"{a['method']} {a['path']} -> {a['status']}: undocumented operation")
            else:
                errors = error_schema_errors(openapi, json.loads(a["body"]))
                failures.extend(f"{a['method']} {a['path']} -> 405: {e}" for e in errors)
            continue
        except Exception as e:  # noqa: BLE001 - report every kind of mismatch
            detail = getattr(e, "__cause__", None) or e
            failures.append(f"{a['method']} {a['path']} -> {a['status']}: {e!r}: {detail}")
        exercised.add((a["method"].lower(), template_of(openapi, a["path"])))
    spec = openapi.spec.contents()
    for path, item in ({} if partial else spec["paths"]).items():
        for method in item:
            if method in ("get", "delete", "post", "put", "patch") and (method, path) not in exercised:
                failures.append(f"{method.upper()} {path} is documented but was never exercised")
    for f in failures:
        print("FAIL", f)
    print(f"{len(answers)} answers checked, {len(failures)} failures")
    return 1 if failures else 0


def error_schema_errors(openapi, body):
    schemas = openapi.spec.contents()["components"]["schemas"]
    return [e.message for e in OAS30Validator(schemas["Error"]).iter_errors(body)]


def template_of(openapi, path):
    for template in openapi.spec.contents()["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            return template
    return path


if __name__ == "__main__":
    sys.exit(main())
