"""An sh_test that drives the built tools: e2e_test(name, src, args)."""

_TOOLS = [
    "//tools:shm-produce",
    "//tools:shm-consume",
    "//tools:shm-ring",
]

def e2e_test(name, src, args = [], size = "medium", data = [], tags = [], **kwargs):
    # Medium (300 s) by default: a script starts dozens of processes, which
    # on a loaded machine takes longer than small's 60 s.
    # The tools come first on the command line: lib.sh PRODUCE CONSUME RING.
    native.sh_test(
        name = name,
        size = size,
        srcs = [src],
        args = ["$(location %s)" % t for t in _TOOLS] + args,
        data = _TOOLS + ["//tests/e2e:lib.sh"] + data,
        tags = tags,
        **kwargs
    )
