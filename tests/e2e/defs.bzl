"""An sh_test that drives the built tools: e2e_test(name, src, args)."""

_TOOLS = [
    "//tools:shm-produce",
    "//tools:shm-consume",
    "//tools:shm-ring",
]

def e2e_test(name, src, args = [], size = "small", data = [], tags = [], **kwargs):
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
