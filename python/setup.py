"""The `shmring` extension for pip (pyproject.toml): python/module.cc and
the library's sources, compiled into one module with Debian's pybind11
headers and python3-dev.

One list of sources: the library's are the `srcs` of //ring in ring/BUILD,
the list Bazel builds and CMake reads too (scripts/check-build-lists keeps
those two equal). The module depends on //ring alone (python/BUILD), so
//ring:c (c_api.cc, the C API) is not compiled in. A source added to //ring
is compiled here with no edit to this file.

The version is ring/version.h's (SHMRING_VERSION_MAJOR/MINOR/PATCH), the
one the module reports as shmring.__version__.

Installed as the package `shmring`: the extension is shmring/__init__ (the
import system loads an extension as a package's __init__), next to the
stub __init__.pyi and py.typed (PEP 561 types packages, not single-file
modules).
"""
import ast
import os
import re

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def version():
    path = os.path.join(ROOT, "ring", "version.h")
    with open(path, encoding="utf-8") as f:
        parts = dict(
            re.findall(
                r"^#define SHMRING_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)$",
                f.read(),
                re.M,
            )
        )
    if len(parts) != 3:
        raise SystemExit(f"{path}: no SHMRING_VERSION_MAJOR/MINOR/PATCH")
    return "{MAJOR}.{MINOR}.{PATCH}".format(**parts)


def bazel_rule(package, name):
    """The srcs and hdrs of rule `name` in `package`/BUILD, as paths from
    the top of the checkout. BUILD files are Starlark, which parses as
    Python; the lists must be plain lists of file names (as CMake requires
    too, cmake/BazelSources.cmake)."""
    path = os.path.join(ROOT, package, "BUILD")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        label = kwargs.get("name")
        if not (isinstance(label, ast.Constant) and label.value == name):
            continue
        files = {}
        for attr in ("srcs", "hdrs"):
            try:
                names = ast.literal_eval(kwargs[attr]) if attr in kwargs else []
            except ValueError:
                raise SystemExit(
                    f"{path}:{kwargs[attr].lineno}: {name}'s {attr} is not "
                    "a plain list of file names"
                ) from None
            files[attr] = [f"{package}/{n}" for n in names]
        return files
    raise SystemExit(f"{path}: no rule named {name!r}")


ring = bazel_rule("ring", "ring")
internal = bazel_rule("ring/internal", "internal")
sources = ["python/module.cc"] + [s for s in ring["srcs"] if s.endswith(".cc")]
headers = [
    f
    for f in ring["srcs"] + ring["hdrs"] + internal["hdrs"]
    if not f.endswith(".cc")
]

# setuptools wants paths relative to this directory.
os.chdir(HERE)
here = lambda paths: [os.path.relpath(os.path.join(ROOT, p)) for p in paths]

setup(
    version=version(),
    packages=["shmring"],
    package_data={"shmring": ["__init__.pyi", "py.typed"]},
    ext_modules=[
        Extension(
            "shmring.__init__",
            sources=here(sources),
            depends=here(headers),
            include_dirs=[ROOT],
            language="c++",
            extra_compile_args=["-std=c++20", "-fvisibility=hidden"],
            libraries=["rt", "pthread"],
        )
    ],
    zip_safe=False,
)
