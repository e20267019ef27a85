"""RuntimeConfig and BUILTIN_RUNTIMES, as in the seed, on libsbx's runtimes."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

from . import _sbx


@dataclass
class RuntimeConfig:
    """A pre-configured environment: ``image`` used as is, or ``base_image``
    plus ``packages`` (installed with ``package_manager``) and
    ``setup_commands``, built once into an image tagged by a hash of the
    definition. Every field is validated by libsbx."""

    name: str
    description: str = ""
    image: Optional[str] = None
    base_image: Optional[str] = None
    packages: List[str] = field(default_factory=list)
    package_manager: str = "pip"
    setup_commands: List[str] = field(default_factory=list)
    env_vars: Dict[str, str] = field(default_factory=dict)
    work_dir: str = "/workspace"
    cache_image: bool = True

    def to_json(self) -> str:
        return json.dumps({
            "name": self.name, "description": self.description, "image": self.image,
            "base_image": self.base_image, "packages": list(self.packages),
            "package_manager": self.package_manager,
            "setup_commands": list(self.setup_commands), "env_vars": dict(self.env_vars),
            "work_dir": self.work_dir, "cache_image": self.cache_image,
        })


def _from_definition(d: dict) -> RuntimeConfig:
    return RuntimeConfig(name=d["name"], description=d.get("description") or "",
                         image=d.get("image"), base_image=d.get("base_image"),
                         packages=list(d.get("packages") or []),
                         package_manager=d.get("package_manager") or "pip",
                         setup_commands=list(d.get("setup_commands") or []),
                         env_vars=dict(d.get("env_vars") or {}),
                         work_dir=d.get("work_dir") or "/workspace",
                         cache_image=bool(d.get("cache_image", True)))


def _builtins() -> Dict[str, RuntimeConfig]:
    out = {}
    for name in _sbx.runtime_builtin_names():
        out[name] = _from_definition(json.loads(_sbx.runtime_builtin(name).to_json()))
    return out


BUILTIN_RUNTIMES: Dict[str, RuntimeConfig] = _builtins()


def _resolve(runtime: Union[str, RuntimeConfig, None]):
    """A libsbx runtime for RUNTIME: a built-in by name (or unchanged from
    BUILTIN_RUNTIMES, which keeps its Debian flavour for machines without
    the seed's image), else the definition as given."""
    if runtime is None:
        return None
    if isinstance(runtime, str):
        return _sbx.runtime_builtin(runtime)
    if not isinstance(runtime, RuntimeConfig):
        raise TypeError("runtime must be a name or a RuntimeConfig, not %s"
                        % type(runtime).__name__)
    if BUILTIN_RUNTIMES.get(runtime.name) == runtime:
        return _sbx.runtime_builtin(runtime.name)
    return _sbx.runtime_from_json(runtime.to_json())
