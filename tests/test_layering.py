"""The layering of docs/architecture.md, checked on the source: which package may import which,
and first-party imports at module top only (a function-local import hides a dependency).

Every module of the first-party packages is parsed (no import runs), and each `import` or
`from ... import` naming a first-party package is one edge (relative imports resolved).
"""
import ast
from pathlib import Path

import pytest

from formats.regmap import MAGIC

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("formats", "snn", "gen", "hw", "sim", "host", "benchmarks")

# package -> first-party packages it must never import, and why.
FORBIDDEN = {
    "formats": ({"snn", "gen", "hw", "sim", "host", "benchmarks"},
                "formats is what everyone reads (the board too): numpy and the standard library only"),
    "host": ({"snn", "gen", "hw", "sim", "benchmarks"},
             "host runs on the PYNQ board with numpy and pynq (and formats, shipped beside it) only"),
    "gen": ({"sim", "host", "benchmarks"}, "the compiler never depends on the simulator or the driver"),
    "hw": ({"gen", "sim", "host", "snn", "benchmarks"}, "the hardware gets everything from its caller as data"),
    "snn": ({"gen", "hw", "sim", "host", "benchmarks"}, "the trainer knows nothing of the compiler"),
    "sim": ({"snn", "benchmarks"}, "the simulator reads builds (manifest, IR, formats.mnist), not checkpoints"),
}

# A function-local import of a first-party module that imports torch (at its top, itself or
# through the modules it imports at their tops) is allowed: it keeps torch, seconds to import,
# out of the processes that do not need it (`python -m snn --help`, gen's numpy-only stages).
# The test derives that from the source, so the reason cannot go stale. Any other exception:
# (module path, imported module) -> why. Keep it empty: the fix is to move the import up.
HEAVY = "torch"
LOCAL_IMPORT_ALLOWED: dict[tuple[str, str], str] = {}


def modules():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(), filename=str(path))


def absolute(module_path: str, node: ast.ImportFrom) -> list[str]:
    """The absolute module names an import statement names."""
    if node.level == 0:
        return [node.module] + [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
    parts = module_path[:-3].split("/")
    base = parts[:len(parts) - node.level]      # the module's package, then up one per extra dot
    stem = ".".join(base + ([node.module] if node.module else []))
    return [stem] + [f"{stem}.{a.name}" for a in node.names if a.name != "*"]


def imports(module_path: str, tree: ast.AST):
    """(line, first-party module named, inside a function?) for every import statement."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def in_function(node) -> bool:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return True
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = absolute(module_path, node)[:1]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                yield node.lineno, name, in_function(node)


ALL = list(modules())


def module_name(path: str) -> str:
    name = path[:-3].replace("/", ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def top_level_imports(path: str, tree: ast.Module) -> set[str]:
    """Modules imported by the module's top-level statements (any module, not only first-party)."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(absolute(path, node) if node.level else [node.module])
    return names


def modules_importing_heavy() -> set[str]:
    """First-party modules whose import loads HEAVY, transitively through top-level imports."""
    tops = {module_name(path): top_level_imports(path, tree) for path, tree in ALL}
    heavy = {name for name, deps in tops.items() if any(d.split(".")[0] == HEAVY for d in deps)}
    changed = True
    while changed:
        changed = False
        for name, deps in tops.items():
            if name not in heavy and deps & heavy:
                heavy.add(name)
                changed = True
    return heavy


HEAVY_MODULES = modules_importing_heavy()


def test_every_package_is_checked():
    checked = {path.split("/")[0] for path, _ in ALL}
    assert checked == set(PACKAGES)
    assert len(ALL) > 100


def test_no_forbidden_package_edge():
    broken = []
    for path, tree in ALL:
        package = path.split("/")[0]
        forbidden, why = FORBIDDEN.get(package, (set(), ""))
        for line, name, _ in imports(path, tree):
            if name.split(".")[0] in forbidden:
                broken.append(f"{path}:{line} imports {name} ({why})")
    assert not broken, "\n".join(broken)


# gen's stages (docs/architecture.md), each allowed to import only the stages it names: the
# flow of a build reads top to bottom, and a lower stage never reaches up into a later one.
GEN_STAGES = {
    "errors": set(),
    "ops": {"errors"},
    "ir": {"ops", "errors"},
    "frontend": {"ir", "ops", "errors"},
    "boards": {"errors"},
    "engines": {"boards", "ir", "ops", "errors"},
    "plan": {"engines", "boards", "ir", "ops", "errors"},
    "backend": {"plan", "engines", "boards", "ir", "ops", "errors"},
    "flow": {"backend", "plan", "engines", "boards", "frontend", "ir", "ops", "errors", "cli"},
    "cli": set(),          # imports the flow's command modules by name (gen.cli.COMMANDS)
    "__main__": {"cli"},
}


def gen_stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "gen" and len(parts) > 1 else None


def test_every_gen_module_is_in_a_stage():
    stages = {gen_stage(module_name(path)) for path, _ in ALL if path.startswith("gen/") and path != "gen/__init__.py"}
    assert stages == set(GEN_STAGES)


def test_gen_stages_import_only_earlier_stages():
    broken = []
    for path, tree in ALL:
        stage = gen_stage(module_name(path))
        if not path.startswith("gen/") or stage is None:
            continue
        for line, name, _ in imports(path, tree):
            target = gen_stage(name)
            if target and target != stage and target not in GEN_STAGES[stage]:
                broken.append(f"{path}:{line} imports {name} (gen.{stage} may import {sorted(GEN_STAGES[stage])})")
    assert not broken, "\n".join(broken)


def test_first_party_imports_sit_at_module_top():
    local = [f"{path}:{line} imports {name} inside a function"
             for path, tree in ALL for line, name, inside in imports(path, tree)
             if inside and (path, name) not in LOCAL_IMPORT_ALLOWED and name not in HEAVY_MODULES]
    assert not local, "move these imports to the top of their module:\n" + "\n".join(local)


def test_every_allowed_local_import_still_exists():
    """An allowance outlives its reason otherwise."""
    found = {(path, name) for path, tree in ALL for _, name, inside in imports(path, tree) if inside}
    assert set(LOCAL_IMPORT_ALLOWED) <= found, set(LOCAL_IMPORT_ALLOWED) - found


def test_torch_free_modules_are_known_to_be_torch_free():
    """The allowance above rests on this analysis: the torch-free modules must really be torch-free."""
    assert "snn.model" in HEAVY_MODULES
    assert not {"formats.mnist", "formats.manifest", "host.driver", "gen.ir", "gen.flow.build"} & HEAVY_MODULES


@pytest.mark.parametrize("source, expected", [
    ("import gen.plan\n", [(1, "gen.plan", False)]),
    ("def f():\n    from sim import board\n", [(2, "sim", True)]),
    ("from .driver import Accelerator\n", [(1, "host.driver", False)]),
    ("import numpy\n", []),
])
def test_the_checker_sees_an_import(source, expected):
    """The checker itself: a violation it could not see would make the tests above pass vacuously."""
    assert list(imports("host/cli.py", ast.parse(source))) == expected


def test_the_magic_number_is_written_down_once():
    """MAGIC (and so the register map it opens) has one definition, formats/regmap.py: the
    hardware and the driver import it instead of retyping it."""
    spellings = (f"0x{MAGIC:08x}", str(MAGIC))
    found = [path for path, _ in ALL
             if any(spelling in (REPO / path).read_text().lower() for spelling in spellings)]
    assert found == ["formats/regmap.py"], found
