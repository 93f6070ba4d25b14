"""The code passes the project's lint settings (``ruff.toml``), and the public functions
of the package say their types."""
import ast
import pathlib
import subprocess
import sys

import pytest

from tests.support.processes import REPO_DIR

PACKAGE = pathlib.Path(REPO_DIR) / 'flower'


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', '.'], cwd=REPO_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def unannotated_public_functions(source: str) -> list[str]:
    """``'Class.method(arg)'`` or ``'function() -> ?'`` for each public function or method
    (not nested in a function or a private class) missing a parameter's or the return's hint."""
    missing = []

    def visit(node, prefix, public):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f'{prefix}{child.name}.', public and not child.name.startswith('_'))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = child.name
                if not public or (name.startswith('_') and name != '__init__'):
                    continue
                args = child.args
                params = args.posonlyargs + args.args + args.kwonlyargs
                if prefix and params and params[0].arg in ('self', 'cls') and not any(
                        isinstance(d, ast.Name) and d.id == 'staticmethod'
                        for d in child.decorator_list):
                    params = params[1:]
                params += [arg for arg in (args.vararg, args.kwarg) if arg is not None]
                missing.extend(f'{prefix}{name}({param.arg})' for param in params
                               if param.annotation is None)
                if child.returns is None:
                    missing.append(f'{prefix}{name}() -> ?')

    visit(ast.parse(source), '', True)
    return missing


def test_the_checker_of_hints_sees_what_is_missing():
    source = ('def f(a, b: int) -> int: ...\n'
              'def _private(a): ...\n'
              'class C:\n'
              '    def __init__(self, x: int): ...\n'
              '    def m(self, *args, **kwargs) -> None: ...\n'
              '    @staticmethod\n'
              '    def s(value: str) -> str: ...\n'
              'class _Hidden:\n'
              '    def m(self, x): ...\n')
    assert unannotated_public_functions(source) == [
        'f(a)', 'C.__init__() -> ?', 'C.m(args)', 'C.m(kwargs)']


@pytest.mark.parametrize('path', sorted(PACKAGE.rglob('*.py')), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_public_functions_have_type_hints(path):
    assert unannotated_public_functions(path.read_text(encoding='utf-8')) == []
