"""A Catch2 cc_test against //ring, one per source file."""

def ring_test(name, size = "small", srcs = None, deps = [], tags = [], **kwargs):
    native.cc_test(
        name = name,
        size = size,
        srcs = srcs or [name + ".cc"],
        deps = [
            "//ring",
            "//tests:test_support",
            "//third_party:catch2_main",
        ] + deps,
        tags = tags,
        **kwargs
    )
