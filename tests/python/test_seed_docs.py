"""Every Python example of the seed's documents, run as written with only
its import changed (seed_examples/README says which are fragments)."""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "seed_examples")
ROOT = os.path.dirname(os.path.dirname(HERE))


def run_example(name, tmp_path):
    with open(os.path.join(EXAMPLES, name)) as f:
        code = f.read()
    if ".fragment." in name:
        with open(os.path.join(EXAMPLES, "_preamble.py")) as f:
            pre = f.read()
        with open(os.path.join(EXAMPLES, "_postamble.py")) as f:
            post = f.read()
        code = pre + code + post
    script = tmp_path / name.replace(".fragment", "")
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "python"))
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=900)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture
def host_data():
    """/host/data, which the persistent-storage examples mount."""
    made = not os.path.exists("/host")
    os.makedirs("/host/data", exist_ok=True)
    yield "/host/data"
    shutil.rmtree("/host" if made else "/host/data", ignore_errors=True)


def test_doc_basic_usage(tmp_path):
    assert run_example("doc_basic_usage.py", tmp_path) == "Hello from Docker!\n\n"


def test_doc_runtime_configurations(tmp_path):
    # Both sandboxes are lazy: nothing is built or started.
    assert run_example("doc_runtime_configurations.py", tmp_path) == ""


def test_doc_persistent_storage(tmp_path, host_data):
    assert run_example("doc_persistent_storage.py", tmp_path) == ""


def test_doc_session_manager(tmp_path):
    made = not os.path.exists("/app")
    try:
        assert run_example("doc_session_manager.py", tmp_path) == ""
        with open("/app/workspaces/alice/workspace/secret.txt") as f:
            assert f.read() == "Alice's data"
    finally:
        shutil.rmtree("/app" if made else "/app/workspaces/alice", ignore_errors=True)
        import sbx
        sbx._sbx.manager_delete("default")


def test_doc_execution(tmp_path):
    out = run_example("doc_execution.fragment.py", tmp_path)
    assert out == ("python: can't open file '/workspace/script.py': [Errno 2] No such file "
                   "or directory\n\n2\nFalse\n")


def test_doc_file_operations(tmp_path):
    assert run_example("doc_file_operations.fragment.py", tmp_path) == ""


def test_example_basic_usage(tmp_path):
    assert run_example("example_basic_usage.py", tmp_path) == "0 1 1 2 3 5 8 13 21 34 \n"


def test_example_preconfigured_runtimes(tmp_path):
    out = run_example("example_preconfigured_runtimes.py", tmp_path)
    lines = out.splitlines()
    assert lines[0].split() == ["x", "y"]
    assert lines[1].split() == ["count", "100.000000", "100.000000"]


def test_example_custom_runtime(tmp_path):
    assert run_example("example_custom_runtime.py", tmp_path) == ""


def test_example_persistent_storage(tmp_path, host_data):
    assert run_example("example_persistent_storage.py", tmp_path) == ""
    with open(os.path.join(host_data, "results.txt")) as f:
        assert f.read() == "Important data"


def test_example_error_handling(tmp_path):
    out = run_example("example_error_handling.fragment.py", tmp_path)
    assert out == ("Command failed (exit 2)\npython: can't open file "
                   "'/workspace/nonexistent.py': [Errno 2] No such file or directory\n\n")


def test_example_container_lifecycle(tmp_path):
    assert run_example("example_container_lifecycle.py", tmp_path) == "True\nFalse\n"
