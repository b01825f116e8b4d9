"""The type stub shmring/__init__.pyi against the module it describes:
the same public names at the top and in every class, the same bases, the
same parameter names (from pybind11's signatures), and then mypy over
examples/python with the stub (the stub is what a user's type checker
reads).

  stub_test.py STUB.pyi EXAMPLE.py...
"""
import ast
import builtins
import os
import subprocess
import sys
import tempfile
import unittest

import shmring

STUB = sys.argv[1]
EXAMPLES = sys.argv[2:]

# Dunders a type checker uses (context managers, iteration); other dunders
# come from object or pybind11 and are not the module's API.
PROTOCOL = {"__enter__", "__exit__", "__iter__", "__next__", "__aiter__",
            "__anext__", "__len__", "__getitem__", "__fspath__"}


def public(name):
    return not name.startswith("_") or name in PROTOCOL


def load_stub():
    with open(STUB, encoding="utf-8") as f:
        tree = ast.parse(f.read(), STUB)
    top, classes = {}, {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            members = {}
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    members[item.name] = item
                elif isinstance(item, ast.AnnAssign):
                    members[item.target.id] = item
            bases = [ast.unparse(b) for b in node.bases]
            classes[node.name] = (bases, members)
            top[node.name] = "class"
        elif isinstance(node, ast.FunctionDef):
            top[node.name] = node
        elif isinstance(node, ast.AnnAssign):
            top[node.target.id] = "value"
    return top, classes


def stub_members(classes, name):
    """A stub class's members with those of its bases in the stub."""
    bases, members = classes[name]
    out = dict(members)
    for base in bases:
        if base in classes:  # a plain name: a class of the stub
            out = {**stub_members(classes, base), **out}
    return out


def module_members(cls):
    """A class's public members, less those its non-shmring bases give."""
    inherited = set()
    for base in cls.__mro__[1:]:
        if base.__module__ != "shmring":
            inherited |= set(dir(base))
    names = {n for n in dir(cls) if public(n) and n not in inherited}
    # Every class raised (each subclass of Error) has `code`; the stub puts
    # it on Error so that `except shmring.Error as e: e.code` checks.
    if cls is shmring.Error:
        names.add("code")
    return names


def pybind_params(func):
    """Parameter names from pybind11's signature line, `name(a: T, *, b:
    T = x) -> R`; '*' marks keyword-only ones."""
    doc = func.__doc__ or ""
    start = doc.index("(") + 1
    depth, i, params, cur = 1, start, [], ""
    while depth:
        c = doc[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if depth == 1 and c == ",":
            params.append(cur)
            cur = ""
        elif depth:
            cur += c
        i += 1
    params.append(cur)
    return [p.split(":")[0].split("=")[0].strip() for p in params if p.strip()]


def stub_params(node):
    a = node.args
    names = [p.arg for p in a.posonlyargs + a.args]
    if a.vararg:
        names.append("*" + a.vararg.arg)
    elif a.kwonlyargs:
        names += ["*"] + [p.arg for p in a.kwonlyargs]
    return names


class Stub(unittest.TestCase):
    def setUp(self):
        self.top, self.classes = load_stub()

    def test_top_level_names(self):
        module = {n for n in dir(shmring) if public(n)} | {"__version__"}
        stub = {n for n in self.top if public(n)} | {"__version__"}
        self.assertEqual(sorted(module - stub), [], "in the module, not the stub")
        self.assertEqual(sorted(stub - module), [], "in the stub, not the module")
        self.assertIn("__version__", self.top)
        self.assertIsInstance(shmring.__version__, str)

    def base_name(self, base):
        """A base class as the stub writes it: builtins.X where the module
        has an X of its own (InterruptedError)."""
        if base.__module__ == "builtins" and base.__name__ in self.top:
            return "builtins." + base.__name__
        return base.__name__

    def test_kinds_and_bases(self):
        for name, what in self.top.items():
            if not public(name):
                continue
            obj = getattr(shmring, name)
            with self.subTest(name=name):
                if what == "class":
                    self.assertIsInstance(obj, type)
                    bases, _ = self.classes[name]
                    real = [self.base_name(b) for b in obj.__bases__
                            if b.__name__ != "pybind11_object"]
                    self.assertEqual(real, bases)
                elif isinstance(what, ast.FunctionDef):
                    self.assertTrue(callable(obj))
                    self.assertNotIsInstance(obj, type)

    def test_class_members(self):
        for name in self.classes:
            cls = getattr(shmring, name)
            stub = {n for n in stub_members(self.classes, name) if public(n)}
            with self.subTest(cls=name):
                real = module_members(cls)
                self.assertEqual(sorted(real - stub), [], "not in the stub")
                self.assertEqual(sorted(stub - real), [], "not in the module")

    def test_parameter_names(self):
        checked = 0
        for name, what in self.top.items():
            if isinstance(what, ast.FunctionDef):
                with self.subTest(func=name):
                    self.assertEqual(stub_params(what),
                                     pybind_params(getattr(shmring, name)))
                    checked += 1
        for name in self.classes:
            cls = getattr(shmring, name)
            for member, node in self.classes[name][1].items():
                if not isinstance(node, ast.FunctionDef):
                    continue  # attributes
                doc = getattr(cls, member).__doc__ or ""
                if not doc.startswith(member + "("):
                    continue  # properties (their getter has no signature)
                with self.subTest(method=f"{name}.{member}"):
                    self.assertEqual(stub_params(node),
                                     pybind_params(getattr(cls, member)))
                    checked += 1
        self.assertGreater(checked, 10)

    def test_mypy_on_the_examples(self):
        try:
            import mypy  # noqa: F401  Debian's python3-mypy (scripts/setup)
        except ImportError:
            self.fail("mypy is missing: install python3-mypy (scripts/setup)")
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, MYPYPATH=os.path.dirname(
                os.path.dirname(os.path.abspath(STUB))))
            r = subprocess.run(
                [sys.executable, "-m", "mypy", "--cache-dir", cache,
                 "--no-error-summary", "--strict-equality", *EXAMPLES],
                env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
