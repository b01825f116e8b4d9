"""Keeps the docs' examples true: every fenced block after
`<!-- include: PATH -->` must equal the file PATH, and every block after
`<!-- output: PATH -->` must equal what running PATH prints (a .py file
runs with the Python module; anything else names a built program given as
PATH=BINARY on the command line).

  check_docs.py PYTHON MODULE_DIR [PATH=BINARY ...] -- DOC.md ...
"""
import os
import re
import subprocess
import sys

BLOCK = re.compile(r"<!-- (include|output): (\S+) -->\n```[a-z]*\n(.*?)```",
                   re.S)


def main(argv):
    python, module_dir = argv[1], argv[2]
    sep = argv.index("--")
    binaries = dict(a.split("=", 1) for a in argv[3:sep])
    docs = argv[sep + 1:]
    env = dict(os.environ, PYTHONPATH=module_dir, PYTHONDONTWRITEBYTECODE="1")
    failures = checked = 0
    for doc in docs:
        text = open(doc).read()
        for kind, path, body in BLOCK.findall(text):
            checked += 1
            if kind == "include":
                want = open(path).read()
                what = "the file"
            else:
                cmd = [python, path] if path.endswith(".py") else [
                    binaries[path]]
                run = subprocess.run(cmd, env=env, capture_output=True,
                                     text=True, timeout=60)
                if run.returncode != 0:
                    print(f"FAIL {doc}: {path} exited {run.returncode}\n"
                          f"{run.stderr}")
                    failures += 1
                    continue
                want = run.stdout
                what = "its output"
            if body != want:
                print(f"FAIL {doc}: the block for {path} differs from {what}")
                failures += 1
            else:
                print(f"ok   {doc}: {kind} {path}")
    if checked == 0:
        print("FAIL: no example blocks found")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
