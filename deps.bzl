"""shmring's external repositories, for its own WORKSPACE and for yours.

An external workspace needs only:

    local_repository(name = "shmring", path = "/path/to/shmring")
    load("@shmring//:deps.bzl", "shmring_deps")
    shmring_deps()

Debian's Bazel 4.2 builds offline, so the repositories Bazel would download
for any C++ build are local here: @rules_cc and @remote_coverage_tools are
stubs in shmring's third_party/ (see their BUILD files), @rules_java is
Debian's bazel-rules-java. A repository your WORKSPACE already defined
before calling shmring_deps() is left alone.
"""

def _third_party_stub_impl(rctx):
    # The stub directory inside the shmring repository, wherever that is
    # (the main workspace or an external one): the label resolves against
    # the repository holding this file, not the caller's.
    src = rctx.path(rctx.attr.marker).dirname
    for entry in src.readdir():
        rctx.symlink(entry, entry.basename)

_third_party_stub = repository_rule(
    implementation = _third_party_stub_impl,
    attrs = {
        "marker": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "The stub's WORKSPACE file; its directory becomes the repository.",
        ),
    },
    local = True,
    doc = "A repository made of a directory of shmring's third_party/.",
)

def shmring_deps():
    """Defines @rules_cc, @rules_java and @remote_coverage_tools offline."""

    # Debian's bazel-rules-cc does not work with 4.2.3; this stub forwards
    # each rule to the native one.
    if not native.existing_rule("rules_cc"):
        _third_party_stub(
            name = "rules_cc",
            marker = Label("//third_party/rules_cc:WORKSPACE"),
        )

    # Java toolchains are registered even for pure C++ builds.
    if not native.existing_rule("rules_java"):
        native.local_repository(
            name = "rules_java",
            path = "/usr/share/bazel/rules/java",
        )

    # Every test depends on this implicitly; the stub fails coverage runs
    # loudly.
    if not native.existing_rule("remote_coverage_tools"):
        _third_party_stub(
            name = "remote_coverage_tools",
            marker = Label("//third_party/remote_coverage_tools:WORKSPACE"),
        )
