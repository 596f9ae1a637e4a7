"""The plugin manager: built-in and third-party plugins load through one path, the entry-point group ``accel``.

Loading is lazy (first use), ordered by entry-point name (so every MPI rank builds the same registry), and
idempotent. A plugin that fails to import or whose hooks raise is reported (``Registry.failures``, a warning, the
``accel plugins`` listing) and skipped, never fatal.

Names never shadow silently. Every component is reachable by its qualified name ``PLUGIN:COMPONENT`` (e.g.
``-accel_plugin mypkg:dcdm``, ``sampler="aas:uniform"``), PLUGIN being the entry-point name ``accel plugins`` shows.
A plain name that several plugins declare for one kind resolves as follows:

* one of them is built in (shipped with accel): the built-in keeps the plain name, and a warning names the other
  plugin(s) and their qualified names;
* otherwise (third-party plugins only): :class:`AmbiguousComponentError` names every plugin declaring it and the
  qualified names to choose from.

A third-party plugin whose entry-point name is already taken by a built-in, or that shares its entry-point name
with another third-party distribution, is skipped and reported (``Registry.failures``) naming both distributions.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pluggy

from . import hookspecs
from .components import KINDS, ComponentSpec
from .errors import AmbiguousComponentError, UnknownComponentError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "accel"
BUILTIN_DISTRIBUTION = "accel"  # plugins shipped in accel's own distribution keep plain names on a clash


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
    builtin: bool = False


class Registry:
    """All plugins known to this process. Use :func:`get_registry` for the shared instance."""

    def __init__(self, group: str = ENTRY_POINT_GROUP):
        self.group = group
        self.pm = pluggy.PluginManager("accel")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._plugins: dict[str, PluginInfo] | None = None
        self._warned: set[tuple[str, str]] = set()

    # -- loading ---------------------------------------------------------------------------------------------------
    def _candidates(self):
        """(name, source, loader, version, builtin) per entry point, in name order; an entry-point name claimed by
        two distributions is resolved here (the built-in keeps it; two third-party claims are both skipped)."""
        by_name: dict[str, list] = {}
        for ep in metadata.entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            dist_name = dist.name if dist is not None else ep.value
            claims = by_name.setdefault(ep.name, [])
            if all(c[1] != dist_name for c in claims):  # the same distribution found twice on sys.path counts once
                claims.append((ep, dist_name, dist.version if dist is not None else "unknown"))
        for name in sorted(by_name):
            claims = sorted(by_name[name], key=lambda c: (c[1] != BUILTIN_DISTRIBUTION, c[1]))
            if len(claims) > 1:
                dists = " and ".join(f"{d} {v}" for _, d, v in claims)
                if claims[0][1] == BUILTIN_DISTRIBUTION:
                    for _, d, v in claims[1:]:
                        self._fail(name, f"{d} {v}", f"the plugin name {name!r} is accel's built-in plugin; the "
                                   f"distribution {d} must register its entry point under another name")
                    claims = claims[:1]
                else:
                    for _, d, v in claims:
                        self._fail(name, f"{d} {v}", f"the plugin name {name!r} is declared by {dists}; uninstall "
                                   "one of them or rename its entry point")
                    continue
            ep, dist_name, version = claims[0]
            yield name, f"{dist_name} {version}", ep.load, version, dist_name == BUILTIN_DISTRIBUTION

    def load(self) -> "Registry":
        if self._plugins is not None:
            return self
        self._plugins = {}
        for name, source, loader, version, builtin in self._candidates():
            try:
                plugin = loader()
                self.pm.register(plugin, name=name)
            except Exception as exc:  # a broken third-party plugin must never take the solver down
                self._fail(name, source, f"{type(exc).__name__}: {exc}")
                continue
            try:
                info = self._describe(name, source, version, plugin, builtin)
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

    def _describe(self, name, source, version, plugin, builtin) -> PluginInfo:
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
        return PluginInfo(name, source, version, tuple(comps), tuple(dirs), builtin)

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
        """The component ``name`` (plain, or qualified ``PLUGIN:COMPONENT``) of ``kind``; see the module docstring
        for how a plain name that several plugins declare is resolved."""
        plugin, sep, plain = name.rpartition(":")
        candidates = self.components(kind)
        matches = [c for c in candidates if c.name == plain and (not sep or c.plugin == plugin)]
        if not matches:
            valid = ", ".join(c.name for c in candidates) or "(none installed)"
            hint = ""
            if any(f.name in (name, plugin) for f in self.failures):
                hint = f" (a plugin named {plugin or name!r} failed to load: see 'accel plugins')"
            raise UnknownComponentError(f"unknown {kind} {name!r}{hint}; valid names: {valid} "
                                        "(or PLUGIN:NAME, e.g. " + (f"{candidates[0].qualified_name})"
                                                                    if candidates else "dcdm:dcdm)"))
        if len(matches) == 1:
            return matches[0]
        plugins = self.plugins
        builtin = [c for c in matches if plugins[c.plugin].builtin]
        others = [c for c in matches if not plugins[c.plugin].builtin]
        if len(builtin) == 1:
            if (kind, plain) not in self._warned:
                self._warned.add((kind, plain))
                msg = (f"{kind} {plain!r} is also declared by plugin(s) "
                       f"{', '.join(repr(c.plugin) + ' (' + plugins[c.plugin].source + ')' for c in others)}; using "
                       f"the built-in {builtin[0].qualified_name}. Select the other one by its qualified name: "
                       f"{', '.join(c.qualified_name for c in others)}")
                log.warning("%s", msg)
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
            return builtin[0]
        raise AmbiguousComponentError(
            f"{kind} {plain!r} is declared by several plugins: "
            f"{', '.join(repr(c.plugin) + ' (' + plugins[c.plugin].source + ')' for c in matches)}; choose one by "
            f"its qualified name: {', '.join(c.qualified_name for c in matches)}")

    def create(self, kind: str, name: str, **kwargs):
        """Build the component ``name`` of ``kind`` with ``kwargs`` passed to its factory."""
        return self.get(kind, name).load()(**kwargs)

    def model_files(self, plugin: str | None = None) -> list[Path]:
        """Shipped model files of every plugin, or of ``plugin`` (a qualified ``PLUGIN:COMPONENT`` counts by its
        PLUGIN part)."""
        plugin = plugin.partition(":")[0] if plugin and ":" in plugin else plugin
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
