"""Shared fixtures for the sbx binding's tests (run against the real engine).

Run from /work/main:
    make python
    PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python -q

Every container a test makes is removed by the test's fixtures; a
session-wide guard checks at the end that no sbx container (label
io.sbx.managed=1) was added by the suite.

sbx keeps a host record for each sandbox and each session manager under its
state root (SBX_STATE_DIR). The suite points SBX_STATE_DIR at a private
folder of its own: nothing is left in /var/lib/sbx, and a container left
behind can be told apart from those of other programs using the same engine
at the same time (it has a record in our folder, or a manager label with our
prefix).
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import pytest

_BUILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "python")
try:
    import sbx  # noqa: F401
except ImportError:  # not on PYTHONPATH: the tree's build
    sys.path.insert(0, os.path.abspath(_BUILD))

# Before any sbx call: the library reads it on each use.
STATE_DIR = tempfile.mkdtemp(prefix="sbx-pytest-state-")
_OLD_STATE_DIR = os.environ.get("SBX_STATE_DIR")
os.environ["SBX_STATE_DIR"] = STATE_DIR

import sbx  # noqa: E402

BUSYBOX = "sbx-test/busybox:1"
BASE = "sbx/base:bookworm"
MANAGER_PREFIX = "pytest-%d-" % os.getpid()
_manager_numbers = itertools.count(1)


# --------------------------------------------------------------- docker helpers

def docker(*args: str, check: bool = True) -> str:
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("docker %s failed: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout


def sbx_containers() -> set:
    """Ids of the containers carrying sbx's label (running or not) that this
    run made: those with a host record in our state root, or a manager label
    with our prefix. Other programs may use the engine at the same time."""
    out = docker("ps", "-a", "--no-trunc", "--filter", "label=io.sbx.managed=1", "--format",
                 '{{.ID}} {{.Names}} {{.Label "io.sbx.manager"}}')
    records = os.path.join(STATE_DIR, "sandboxes")
    mine = set(os.listdir(records)) if os.path.isdir(records) else set()
    ids = set()
    for line in out.splitlines():
        cid, name, manager = (line.split(" ") + ["", ""])[:3]
        if name in mine or manager.startswith(MANAGER_PREFIX):
            ids.add(cid)
    return ids


def all_sbx_containers() -> set:
    """Ids of every container carrying sbx's label, whoever made it."""
    return set(docker("ps", "-aq", "--no-trunc", "--filter", "label=io.sbx.managed=1").split())


def container_state(name: str):
    """'running', 'exited', ... or None when no container has that name."""
    out = docker("ps", "-a", "--filter", "name=^/%s$" % name, "--format", "{{.State}}")
    states = out.split()
    return states[0] if states else None


def inspect(name: str) -> dict:
    return json.loads(docker("inspect", name))[0]


def _ours(cid: str) -> bool:
    """Whether a container was made by this run (see the module's docstring)."""
    try:
        info = inspect(cid)
    except AssertionError:  # gone meanwhile
        return False
    name = info["Name"].lstrip("/")
    labels = info["Config"].get("Labels") or {}
    return (os.path.isdir(os.path.join(STATE_DIR, "sandboxes", name))
            or labels.get("io.sbx.manager", "").startswith(MANAGER_PREFIX))


def _drop_record(name: str) -> None:
    """Removes a sandbox's host record (sbx mounts a small tmpfs in it)."""
    d = os.path.join(STATE_DIR, "sandboxes", name)
    run = os.path.join(d, "run")
    if os.path.ismount(run):
        subprocess.run(["umount", run], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


def purge_container(name: str) -> None:
    """Removes a sandbox without its DockerSandbox (for one whose handle
    can't be used any more): through a new handle, else by hand."""
    try:
        sbx._sbx.open(name).remove()
    except sbx.SbxError:
        docker("rm", "-f", name, check=False)
    _drop_record(name)


# ---------------------------------------------------------------- session guard

def pytest_configure(config):
    # Every sandbox on this engine says that its disk limit is held by other
    # means (overlay2 without pquota): not what these tests are about.
    config.addinivalue_line(
        "filterwarnings", "ignore:sbx. the engine's storage driver:RuntimeWarning")


@pytest.fixture(scope="session", autouse=True)
def no_container_left_behind():
    """Records sbx's containers before the suite; at its end, asserts that it
    added none (and that no host record of a sandbox is left)."""
    before = all_sbx_containers()
    yield
    added = all_sbx_containers() - before
    ours = sorted(c for c in added if _ours(c))
    foreign = sorted(set(added) - set(ours))
    records_dir = os.path.join(STATE_DIR, "sandboxes")
    records = sorted(os.listdir(records_dir)) if os.path.isdir(records_dir) else []
    managers_dir = os.path.join(STATE_DIR, "managers")
    managers = sorted(os.listdir(managers_dir)) if os.path.isdir(managers_dir) else []
    details = {c: docker("inspect", "-f", "{{.Name}} {{.State.Status}} {{.Config.Labels}}", c,
                         check=False).strip() for c in ours}
    for c in ours:  # leave nothing, even when failing
        purge_container(inspect(c)["Name"].lstrip("/"))
    for name in records:
        _drop_record(name)
    if foreign:
        warnings.warn("sbx containers of other programs appeared during the run (not ours: no "
                      "record in %s, no %s* manager label): %s" % (STATE_DIR, MANAGER_PREFIX,
                                                                  foreign))
    try:
        assert ours == [], "the suite left sbx containers behind: %s" % details
        assert records == [], "host records of sandboxes left in %s: %s" % (records_dir, records)
        assert managers == [], "managers' state left in %s: %s" % (managers_dir, managers)
    finally:
        shutil.rmtree(STATE_DIR, ignore_errors=True)
        if _OLD_STATE_DIR is None:
            os.environ.pop("SBX_STATE_DIR", None)
        else:
            os.environ["SBX_STATE_DIR"] = _OLD_STATE_DIR


# -------------------------------------------------------------------- sandboxes

@pytest.fixture
def make_sandbox():
    """make_sandbox(**kwargs) -> DockerSandbox (busybox unless image= or
    runtime= is given); every one is removed after the test."""
    made = []

    def make(**kwargs):
        if "runtime" not in kwargs:
            kwargs.setdefault("image", BUSYBOX)
        sb = sbx.DockerSandbox(**kwargs)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        try:
            sb.remove()
        except sbx.SbxError:
            pass


@pytest.fixture(scope="module")
def shared_sb():
    """One started busybox sandbox for a module's tests that only touch
    their own folders (cheaper than one container per test)."""
    sb = sbx.DockerSandbox(image=BUSYBOX)
    sb.start()
    yield sb
    sb.remove()


@pytest.fixture
def workdir(shared_sb, request):
    """A fresh folder in shared_sb for one test: its absolute path."""
    path = "/workspace/t-%s" % request.node.name.replace("[", "-").replace("]", "")
    r = shared_sb.execute("rm -rf '%s' && mkdir -p '%s'" % (path, path))
    assert r.exit_code == 0, r.output
    return path


# --------------------------------------------------------------------- sessions

def new_manager_name() -> str:
    return "%s%d" % (MANAGER_PREFIX, next(_manager_numbers))


def close_manager(m: "sbx.SessionManager", name: str) -> None:
    """Ends every session of M (workspaces purged: they live in tmp dirs) and
    deletes the manager's state."""
    for s in m.list_sessions():
        try:
            m.end_session(s["session_id"], True)
        except sbx.SbxError:
            pass
    m.close()  # its warm pool, if any, goes with it
    sbx._sbx.manager_delete(name)


@pytest.fixture
def make_manager(tmp_path):
    """make_manager(**kwargs) -> (manager, name, workspace_root): a
    SessionManager on busybox with a unique name and a tmp workspace root;
    every session is ended and the manager deleted after the test."""
    made = []

    def make(name=None, workspace_root=None, **kwargs):
        name = name or new_manager_name()
        root = workspace_root or str(tmp_path / ("ws-" + name))
        kwargs.setdefault("image", BUSYBOX)
        m = sbx.SessionManager(workspace_root=root, name=name, **kwargs)
        made.append((m, name))
        return m, name, root

    yield make
    errors = []
    closed = set()
    for m, name in made:  # the first manager of each name
        if name in closed:
            continue
        closed.add(name)
        try:
            close_manager(m, name)
        except sbx.SbxError as e:
            errors.append("%s: %s (%s)" % (name, e, e.code))
    assert not errors, errors
