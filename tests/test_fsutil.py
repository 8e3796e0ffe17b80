"""Atomic writes: the target holds the old or the complete new content, never a part."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from cxr_viewer.fsutil import atomic_open, atomic_path, atomic_write_bytes, atomic_write_text


def test_write_replaces_content_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write_text(target, "first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_error_midway_keeps_old_file_and_removes_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_path_for_writers_that_want_a_file_name(tmp_path):
    target = tmp_path / "img.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"\x89PNG")
        assert not target.exists()
    assert target.read_bytes() == b"\x89PNG"


def test_rejects_read_modes(tmp_path):
    with pytest.raises(ValueError):
        with atomic_open(tmp_path / "x", "r"):
            pass


def test_killed_writer_never_leaves_a_partial_target(tmp_path):
    """A process killed while writing leaves no target at all (only a recognisable .part)."""
    target = tmp_path / "big.bin"
    code = textwrap.dedent(
        f"""
        import sys, time
        from cxr_viewer.fsutil import atomic_open
        with atomic_open({str(target)!r}, "wb") as fh:
            fh.write(b"x" * 1_000_000)
            fh.flush()
            print("writing", flush=True)
            time.sleep(60)
            fh.write(b"y")
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    assert all(p.name.startswith(".big.bin.") and ".part" in p.name for p in leftovers)


def test_new_file_follows_umask_and_existing_file_keeps_its_mode(tmp_path):
    old = os.umask(0o022)
    try:
        fresh = atomic_write_text(tmp_path / "fresh.txt", "x")
        assert fresh.stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o640)
        atomic_write_text(kept, "new")
        assert kept.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
