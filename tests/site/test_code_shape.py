"""The shape the code keeps: no production module over 400 lines, no function over 60, outside
migrations. Walks the source tree, so a new module is held to it without anyone remembering."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ["core", "orgs", "billing", "usage", "billingsite"]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def production_modules() -> list[Path]:
    return sorted(
        path
        for package in PRODUCTION
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.relative_to(ROOT).parts
    )


def test_the_walk_finds_the_production_code():
    names = {str(path.relative_to(ROOT)) for path in production_modules()}
    assert {"core/registries.py", "billing/services/payments.py", "usage/services/metering.py"} <= names
    assert not any("migrations" in name for name in names)


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in production_modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_over_60_lines():
    long = {}
    for path in production_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}
