"""Checks every relative link and #anchor in the given Markdown files.

check_links.py PATH...   (files, or directories whose *.md files, at any
depth, are checked; relative to the repository root, which is the working
directory: the runfiles root under Bazel)

A link is relative when it has no scheme (http:, mailto:, ...). Its path
must name a file or directory, relative to the file that holds the link;
its #anchor, when the target (or the file itself, for a bare #anchor) is
Markdown, must be one of the target's heading anchors, made by GitHub's
rule: the heading's text without Markdown markup, lowercased, every
character other than a letter, digit, space, '-' or '_' dropped, spaces
turned into '-', and -1, -2, ... appended to repeats. On any other file
only a GitHub line anchor (#L12, #L12-L20) is accepted. Links and headings
inside fenced code blocks and inline code spans are not links.

Prints one line per broken link, "FILE:LINE: [text](target): why", and
exits 1 if there was any.
"""

import os
import re
import sys
import urllib.parse

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
LINE_ANCHOR = re.compile(r"^L\d+(-L\d+)?$")


def lines_outside_code(text):
    """(line number, line) for every line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                continue
            yield number, line
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and not line.strip().strip(m.group(1)[0]):
            fence = None


def prose(text):
    """Rendered text of Markdown outside code spans (what a slug sees)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    return re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)  # _emphasis_ ('*' drops below)


def slug(heading):
    """GitHub's anchor for a heading's source text."""
    parts = []
    last = 0
    for m in CODE_SPAN.finditer(heading):  # code spans: their text, verbatim
        parts.append(prose(heading[last:m.start()]))
        parts.append(m.group(2))
        last = m.end()
    parts.append(prose(heading[last:]))
    text = "".join(parts).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


_anchors = {}


def anchors(path):
    """The set of anchors of a Markdown file."""
    if path not in _anchors:
        seen = {}
        found = set()
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for _, line in lines_outside_code(text):
            for name in HTML_ANCHOR.findall(line):
                found.add(name)
            m = HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else "%s-%d" % (base, n))
        _anchors[path] = found
    return _anchors[path]


def links(text):
    """(line number, text, target) of every link outside code."""
    for number, line in lines_outside_code(text):
        bare = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for m in INLINE_LINK.finditer(bare):
            yield number, m.group(1), m.group(2)
        m = REF_DEF.match(bare)
        if m:
            yield number, "", m.group(1)


def check(path):
    """Error lines for the broken links of one Markdown file."""
    errors = []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for number, label, target in links(text):
        if not target or SCHEME.match(target):
            continue
        where = "%s:%d: [%s](%s): " % (path, number, label, target)
        file_part, _, anchor = target.partition("#")
        file_part = urllib.parse.unquote(file_part)
        anchor = urllib.parse.unquote(anchor)
        if file_part:
            resolved = os.path.normpath(
                os.path.join(os.path.dirname(path), file_part))
            if resolved.startswith(".."):
                errors.append(where + "points outside the repository")
                continue
            if not os.path.exists(resolved):
                errors.append(where + "no such file: %s (under Bazel: or not in the"
                          " test's data)" % resolved)
                continue
        else:
            resolved = path
        if not anchor:
            continue
        if resolved.endswith(".md") and os.path.isfile(resolved):
            if anchor not in anchors(resolved):
                errors.append(where + "no heading in %s has the anchor #%s"
                              % (resolved, anchor))
        elif not LINE_ANCHOR.match(anchor):
            errors.append(where + "#%s is not a line anchor of %s"
                          % (anchor, resolved))
    return errors


def markdown_files(paths):
    """The given files, and the *.md files under the given directories."""
    for path in paths:
        if not os.path.exists(path) and not path.endswith(".md"):
            print("check_links: nothing at %s" % path)
        elif os.path.isdir(path):
            for root, dirs, files in os.walk(path, followlinks=True):
                dirs.sort()
                for name in sorted(files):
                    if name.endswith(".md"):
                        yield os.path.join(root, name)
        else:
            yield path


def main(paths):
    if not paths:
        print("check_links.py: no files given", file=sys.stderr)
        return 2
    errors = []
    checked = 0
    for path in markdown_files(paths):
        errors += check(path)
        checked += 1
    for line in errors:
        print(line)
    print("check_links: %d files, %d broken links" % (checked, len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
