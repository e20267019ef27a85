"""The sbx package: the seed's Python API on libsbx (a C extension).

Builds against the source tree it sits in: ../build/libsbx.a (made with
`make` when missing) is linked in, and the agent binary is shipped inside
the package, where libsbx finds it beside the extension. Works offline with
Debian's python3-setuptools (no pyproject.toml: nothing to fetch).
"""
import os
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, "build")


def make(*targets):
    if not all(os.path.exists(os.path.join(ROOT, t)) for t in targets):
        subprocess.check_call(["make", "-C", ROOT] + list(targets))


class BuildPy(build_py):
    """Copies the agent into the package, beside the extension."""

    def run(self):
        make("build/libsbx.a", "build/sbx-agent")
        super().run()
        dest = os.path.join(self.build_lib, "sbx", "sbx-agent")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(os.path.join(BUILD, "sbx-agent"), dest)


make("build/libsbx.a", "build/sbx-agent")
setup(
    name="sbx",
    version="0.1.0",
    description="Docker sandboxes for AI agents: the seed's DockerSandbox and SessionManager on libsbx",
    packages=["sbx"],
    package_dir={"sbx": os.path.join(os.path.relpath(HERE, os.getcwd()), "sbx")
                 if os.getcwd() != HERE else "sbx"},
    package_data={"sbx": ["py.typed"]},
    ext_modules=[Extension(
        "sbx._sbx",
        sources=[os.path.join("sbx", "_sbx.c") if os.getcwd() == HERE
                 else os.path.join(HERE, "sbx", "_sbx.c")],
        include_dirs=[os.path.join(ROOT, "include")],
        # SBX_LIBSBX_A: another build of libsbx (the sanitized one, by make).
        extra_objects=[os.environ.get("SBX_LIBSBX_A", os.path.join(BUILD, "libsbx.a"))],
        libraries=["jansson", "dl", "pthread"],
        extra_compile_args=["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-cast-function-type",
                            "-Wno-missing-field-initializers"],
    )],
    cmdclass={"build_py": BuildPy},
    python_requires=">=3.9",
    zip_safe=False,
)
