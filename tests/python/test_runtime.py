"""RuntimeConfig and BUILTIN_RUNTIMES, as in the seed. No built runtime
image is made here (python-datascience takes minutes): a custom runtime on
a local image exercises the path that runs."""
from __future__ import annotations

import pytest

import sbx
from sbx import BUILTIN_RUNTIMES, ExecuteResponse, RuntimeConfig

from conftest import BUSYBOX, sbx_containers

SEED_RUNTIMES = {
    "python-minimal": RuntimeConfig(
        name="python-minimal", description="Clean Python 3.12", image="python:3.12-slim"),
    "python-datascience": RuntimeConfig(
        name="python-datascience", description="pandas, numpy, matplotlib, scikit-learn, seaborn",
        base_image="python:3.12-slim",
        packages=["pandas", "numpy", "matplotlib", "scikit-learn", "seaborn"]),
    # The seed documents' table says "FastAPI, SQLAlchemy, httpx"; the seed
    # library's definition (and sbx) name Uvicorn too, which it installs.
    "python-web": RuntimeConfig(
        name="python-web", description="FastAPI, Uvicorn, SQLAlchemy, httpx",
        base_image="python:3.12-slim", packages=["fastapi", "uvicorn", "sqlalchemy", "httpx"]),
    "node-minimal": RuntimeConfig(
        name="node-minimal", description="Clean Node.js 20", image="node:20-slim",
        package_manager="npm", work_dir="/app"),
    "node-react": RuntimeConfig(
        name="node-react", description="TypeScript, Vite, React", base_image="node:20-slim",
        packages=["typescript", "vite", "react", "react-dom", "@types/react"],
        package_manager="npm", work_dir="/app"),
}


def test_builtin_runtime_names_in_seed_order():
    assert list(BUILTIN_RUNTIMES) == ["python-minimal", "python-datascience", "python-web",
                                      "node-minimal", "node-react"]
    assert sbx._sbx.runtime_builtin_names() == list(BUILTIN_RUNTIMES)


@pytest.mark.parametrize("name", sorted(SEED_RUNTIMES))
def test_builtin_runtime_matches_seed(name):
    rt = BUILTIN_RUNTIMES[name]
    assert isinstance(rt, RuntimeConfig)
    assert rt == SEED_RUNTIMES[name]


def test_builtin_runtime_fields_spelled_out():
    ds = BUILTIN_RUNTIMES["python-datascience"]
    assert ds.packages == ["pandas", "numpy", "matplotlib", "scikit-learn", "seaborn"]
    assert ds.description == "pandas, numpy, matplotlib, scikit-learn, seaborn"
    assert (ds.base_image, ds.image, ds.package_manager, ds.work_dir, ds.cache_image) == (
        "python:3.12-slim", None, "pip", "/workspace", True)
    assert BUILTIN_RUNTIMES["python-web"].packages == ["fastapi", "uvicorn", "sqlalchemy", "httpx"]
    assert BUILTIN_RUNTIMES["node-react"].packages == ["typescript", "vite", "react", "react-dom",
                                                       "@types/react"]
    assert BUILTIN_RUNTIMES["node-minimal"].work_dir == "/app"
    assert BUILTIN_RUNTIMES["python-minimal"].image == "python:3.12-slim"


def test_runtime_config_defaults_are_the_seeds():
    rc = RuntimeConfig(name="n")
    assert (rc.description, rc.image, rc.base_image, rc.packages, rc.package_manager,
            rc.setup_commands, rc.env_vars, rc.work_dir, rc.cache_image) == (
        "", None, None, [], "pip", [], {}, "/workspace", True)


def test_builtin_runtimes_construct_lazily_without_building():
    before = sbx_containers()
    for name, rt in BUILTIN_RUNTIMES.items():
        for runtime in (name, rt):
            sb = sbx.DockerSandbox(runtime=runtime)
            assert sb.id is None and sb.is_alive() is False
            sb.stop()
    assert sbx_containers() - before == set()


def test_unknown_runtime_name_raises():
    with pytest.raises(sbx.SbxError) as e:
        sbx.DockerSandbox(runtime="no-such")
    assert e.value.code == "not_found"
    assert "'no-such'" in str(e.value)
    assert "python-minimal, python-datascience, python-web, node-minimal and node-react" in str(
        e.value)


def test_runtime_of_wrong_type_raises_type_error():
    with pytest.raises(TypeError):
        sbx.DockerSandbox(runtime=42)


@pytest.mark.parametrize("config, what", [
    (RuntimeConfig(name="bad", base_image="python:3.12-slim", packages=["bad;rm -rf /"]),
     "bad;rm -rf /"),
    (RuntimeConfig(name="bad", base_image="python:3.12-slim", packages=["ok", "a\nb"]), "packages"),
    (RuntimeConfig(name="bad", image=BUSYBOX, env_vars={"1BAD": "x"}), "1BAD"),
    (RuntimeConfig(name="bad", image=BUSYBOX, work_dir="/w;rm -rf /"), "work_dir"),
    (RuntimeConfig(name="bad", base_image="python:3.12-slim", packages=["x"],
                   package_manager="brew"), "brew"),
])
def test_invalid_runtime_config_raises_at_construction(config, what):
    before = sbx_containers()
    with pytest.raises(sbx.SbxError) as e:
        sbx.DockerSandbox(runtime=config)
    assert e.value.code == "invalid_argument"
    assert what in str(e.value)
    assert sbx_containers() - before == set()


def test_invalid_package_message():
    with pytest.raises(sbx.SbxError) as e:
        sbx.DockerSandbox(runtime=RuntimeConfig(name="x", base_image="python:3.12-slim",
                                                packages=["bad;rm -rf /"]))
    assert str(e.value) == (
        "invalid packages entry 'bad;rm -rf /': a package name must match "
        "^[A-Za-z0-9@][A-Za-z0-9._@/+=<>~!\\[\\]-]*$ (at most 214 bytes)")


def test_custom_runtime_image_env_vars_and_work_dir(make_sandbox):
    rc = RuntimeConfig(name="x", image=BUSYBOX, env_vars={"A": "1"}, work_dir="/work")
    sb = make_sandbox(runtime=rc)
    assert sb.execute("echo $A; pwd") == ExecuteResponse(output="1\n/work\n", exit_code=0,
                                                          truncated=False)
    assert sb.image == BUSYBOX
    assert sb.work_dir == "/work"
    assert sb.write("rel.txt", "x").path == "rel.txt"
    assert sb.read_bytes("/work/rel.txt") == b"x"


def test_asked_for_work_dir_wins_over_runtime(make_sandbox):
    rc = RuntimeConfig(name="x", image=BUSYBOX, env_vars={"A": "2"}, work_dir="/work")
    sb = make_sandbox(runtime=rc, work_dir="/elsewhere")
    assert sb.execute("echo $A; pwd").output == "2\n/elsewhere\n"
