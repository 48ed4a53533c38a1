"""The plugin manager: built-ins registered as plugins, then entry-point plugins."""
from __future__ import annotations

import functools

import pluggy

from kipoi_maxent.plugin import NAME
from kipoi_maxent.plugin import spec as hookspecs


@functools.lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager (built-ins first, so third-party plugins are asked first)."""
    from kipoi_maxent.plugin import builtin

    manager = pluggy.PluginManager(NAME)
    manager.add_hookspecs(hookspecs)
    for name, plugin in builtin.PLUGINS:
        manager.register(plugin, name=f"builtin.{name}")
    manager.load_setuptools_entrypoints(NAME)
    manager.check_pending()
    return manager


def register(plugin, name: str | None = None) -> None:
    """Register a plugin at run time (e.g. from a script or a test)."""
    manager = plugin_manager()
    manager.register(plugin, name=name)
    manager.check_pending()


def unregister(name: str) -> None:
    plugin_manager().unregister(name=name)


def describe() -> list[tuple[str, str, list[str]]]:
    """``(plugin name, where it comes from, hooks it implements)`` of every loaded plugin."""
    manager = plugin_manager()
    distributions = {id(plugin): f"{dist.project_name} {dist.version}"
                     for plugin, dist in manager.list_plugin_distinfo()}
    rows = []
    for name, plugin in manager.list_name_plugin():
        hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
        origin = distributions.get(id(plugin), "built-in" if name.startswith("builtin.") else "registered at run time")
        rows.append((name, origin, hooks))
    return rows
