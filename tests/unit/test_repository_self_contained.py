"""The repository stands on its own: no tracked file points outside the checkout.

A clone has only what git tracks. A design folder, examples or notes that sat next to the checkout on
one machine are missing there, so every document, docstring, message and test must use the
repository's own files (docs/, tests/data/) instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THIS_FILE = os.path.relpath(os.path.abspath(__file__), REPO).replace(os.sep, "/")
# Spelled in pieces so that no other search for them finds this file.
FORBIDDEN = ("../" + "shared", "/work/" + "shared", "shared" + "/design")


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not os.path.isdir(os.path.join(REPO, ".git")):
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout
    return [name for name in out.decode("utf-8").split("\0") if name]


def test_no_tracked_file_points_outside_the_repository():
    files = tracked_files()
    assert files, "git ls-files listed nothing"
    found = []
    for name in files:
        if name == THIS_FILE:
            continue
        path = os.path.join(REPO, name)
        if not os.path.isfile(path):  # deleted in the working tree, not yet committed
            continue
        with open(path, "rb") as handle:
            data = handle.read()
        for number, line in enumerate(data.split(b"\n"), start=1):
            for needle in FORBIDDEN:
                if needle.encode() in line:
                    found.append(f"{name}:{number}: {needle}")
    assert not found, "tracked files point outside the repository:\n" + "\n".join(found)
