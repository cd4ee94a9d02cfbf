"""The package's layers: each import points down, never up.

``structures`` (joint tables) sits below everything; ``models`` does not know how data are
stored or generated; the real-data transforms do not depend on the synthetic benchmark.
Imports are read from the source (absolute and relative alike), so a lazy import inside a
function counts too.
"""
import ast
import sys
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / 'unspat_mm'


def imported_modules(path: Path):
    """Absolute names of the unspat_mm modules that ``path`` imports."""
    package = ['unspat_mm', *path.relative_to(PACKAGE_ROOT).parent.parts]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = '.'.join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f'{module}.{alias.name}' for alias in node.names)
    return {n for n in names if n.split('.')[0] == 'unspat_mm'}


def violations(layer: str, forbidden: str):
    found = []
    for path in sorted((PACKAGE_ROOT / layer).rglob('*.py')):
        bad = sorted(n for n in imported_modules(path)
                     if n == forbidden or n.startswith(forbidden + '.'))
        if bad:
            found.append(f'{path.relative_to(PACKAGE_ROOT.parent)} imports {bad}')
    return found


@pytest.mark.parametrize('layer, forbidden', [
    ('models', 'unspat_mm.datasets'),
    ('models', 'unspat_mm.evaluation'),
    ('datasets/transforms', 'unspat_mm.datasets.synthetic'),
    ('structures', 'unspat_mm.models'),
    ('structures', 'unspat_mm.datasets'),
    ('structures', 'unspat_mm.evaluation'),
])
def test_no_import_goes_up_a_layer(layer, forbidden):
    assert violations(layer, forbidden) == []


def test_the_checker_sees_relative_and_lazy_imports(tmp_path, monkeypatch):
    fake_root = tmp_path / 'unspat_mm'
    (fake_root / 'models' / 'heads').mkdir(parents=True)
    (fake_root / 'models' / 'heads' / 'bad.py').write_text(
        'def f():\n    from ...datasets.synthetic import cache\n')
    monkeypatch.setattr(sys.modules[__name__], 'PACKAGE_ROOT', fake_root)
    assert violations('models', 'unspat_mm.datasets') == [
        "unspat_mm/models/heads/bad.py imports ['unspat_mm.datasets.synthetic', "
        "'unspat_mm.datasets.synthetic.cache']"]
