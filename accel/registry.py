"""The plugin manager: built-in and third-party plugins load through one path, the entry-point group ``accel``.

Loading is lazy (first use), ordered by entry-point name (so every MPI rank builds the same registry), and
idempotent. A plugin that fails to import or whose hooks raise is reported (``Registry.failures``, a warning, the
``accel plugins`` listing) and skipped, never fatal.
"""
from __future__ import annotations

import importlib
import logging
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pluggy

from . import hookspecs
from .components import KINDS, ComponentSpec
from .errors import UnknownComponentError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "accel"
# Used only when accel runs from a source tree that was never installed (no entry points to read).
_BUILTINS_FALLBACK = {
    "dcdm": "accel.plugins.dcdm",
    "neural_operator": "accel.plugins.neural_operator",
    "wos": "accel.plugins.wos",
    "aas": "accel.plugins.aas",
}


@dataclass(frozen=True)
class PluginFailure:
    name: str
    source: str
    error: str

    def __str__(self):
        return f"plugin {self.name!r} ({self.source}) was skipped: {self.error}"


@dataclass(frozen=True)
class PluginInfo:
    name: str
    source: str
    version: str
    components: tuple[ComponentSpec, ...]
    model_dirs: tuple[Path, ...]


class Registry:
    """All plugins known to this process. Use :func:`get_registry` for the shared instance."""

    def __init__(self, group: str = ENTRY_POINT_GROUP):
        self.group = group
        self.pm = pluggy.PluginManager("accel")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._plugins: dict[str, PluginInfo] | None = None

    # -- loading ---------------------------------------------------------------------------------------------------
    def _candidates(self):
        eps = sorted(metadata.entry_points(group=self.group), key=lambda ep: ep.name)
        seen = set()
        for ep in eps:
            if ep.name in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            source = f"{dist.name} {dist.version}" if dist is not None else ep.value
            yield ep.name, source, ep.load, dist.version if dist is not None else "unknown"
        if not seen.intersection(_BUILTINS_FALLBACK):
            from . import __version__

            for name, module in sorted(_BUILTINS_FALLBACK.items()):
                yield name, f"accel {__version__} (source tree)", (lambda m=module: importlib.import_module(m)), __version__

    def load(self) -> "Registry":
        if self._plugins is not None:
            return self
        self._plugins = {}
        for name, source, loader, version in self._candidates():
            try:
                plugin = loader()
                self.pm.register(plugin, name=name)
            except Exception as exc:  # a broken third-party plugin must never take the solver down
                self._fail(name, source, f"{type(exc).__name__}: {exc}")
                continue
            try:
                info = self._describe(name, source, version, plugin)
            except Exception as exc:
                self.pm.unregister(plugin)
                self._fail(name, source, f"hook raised {type(exc).__name__}: {exc}")
                continue
            self._plugins[name] = info
        return self

    def _fail(self, name, source, error):
        failure = PluginFailure(name, source, error)
        self.failures.append(failure)
        log.warning("%s", failure)
        warnings.warn(str(failure), RuntimeWarning, stacklevel=3)

    def _describe(self, name, source, version, plugin) -> PluginInfo:
        comps, dirs = [], []
        impl = getattr(plugin, "accel_components", None)
        if impl is not None:
            for spec in impl() or ():
                if not isinstance(spec, ComponentSpec):
                    raise TypeError(f"accel_components returned {type(spec).__name__}, expected ComponentSpec")
                comps.append(ComponentSpec(spec.name, spec.kind, spec.factory, spec.summary, name, spec.options))
        impl = getattr(plugin, "accel_model_dirs", None)
        if impl is not None:
            dirs = [Path(d) for d in impl() or ()]
        return PluginInfo(name, source, version, tuple(comps), tuple(dirs))

    # -- queries ---------------------------------------------------------------------------------------------------
    @property
    def plugins(self) -> dict[str, PluginInfo]:
        return dict(self.load()._plugins)

    def components(self, kind: str | None = None) -> list[ComponentSpec]:
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        out = [c for p in self.plugins.values() for c in p.components if kind is None or c.kind == kind]
        return sorted(out, key=lambda c: (c.kind, c.name))

    def get(self, kind: str, name: str) -> ComponentSpec:
        matches = [c for c in self.components(kind) if c.name == name]
        if not matches:
            valid = ", ".join(c.name for c in self.components(kind)) or "(none installed)"
            hint = ""
            if any(f.name == name for f in self.failures):
                hint = f" (a plugin named {name!r} failed to load: see 'accel plugins')"
            raise UnknownComponentError(f"unknown {kind} {name!r}{hint}; valid names: {valid}")
        return matches[0]

    def create(self, kind: str, name: str, **kwargs):
        """Build the component ``name`` of ``kind`` with ``kwargs`` passed to its factory."""
        return self.get(kind, name).load()(**kwargs)

    def model_files(self, plugin: str | None = None) -> list[Path]:
        files = []
        for info in self.plugins.values():
            if plugin is not None and info.name != plugin:
                continue
            for d in info.model_dirs:
                files += sorted(Path(d).glob("*.onnx"))
        return files

    def commands(self, commands) -> None:
        self.load()
        for name in list(self._plugins):
            plugin = self.pm.get_plugin(name)
            impl = getattr(plugin, "accel_cli", None)
            if impl is None:
                continue
            try:
                impl(commands)
            except Exception as exc:
                self._fail(name, self._plugins[name].source, f"accel_cli raised {type(exc).__name__}: {exc}")


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = Registry().load()
    return _registry


def reset_registry() -> None:
    """Forget the loaded registry (after installing a plugin into a running interpreter)."""
    global _registry
    _registry = None
