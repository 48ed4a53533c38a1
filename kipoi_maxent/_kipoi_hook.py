"""Registers kipoi_maxent with Kipoi's hard-coded plugin table, without editing Kipoi.

``kipoi_maxent_kipoi.pth`` (installed into site-packages) imports this module at interpreter
start. It only adds an import hook: when ``kipoi.plugin`` or ``kipoi.__main__`` is imported
later, the plugin entry (``kipoi maxent …``, ``kipoi list_plugins``) and the postproc alias
(``kipoi postproc maxent …``) are appended. Nothing else is imported at start-up, and any
failure (e.g. a Kipoi release that changed these tables) leaves Kipoi untouched. Unless
``--verbose`` is on the command line, the ``pkg_resources`` deprecation warning Kipoi's script
triggers is not shown.
"""
import sys

PLUGIN = {
    "plugin": "kipoi_maxent",
    "url": "https://github.com/kipoi/kipoi_maxent",
    "cli": True,
    "description": "Maximum-entropy interpretation (Finnegan & Song): importance tracks and motif calls",
}


def _patch(module) -> None:
    try:
        if module.__name__ == "kipoi.plugin":
            if all(entry.get("plugin") != PLUGIN["plugin"] for entry in module.PLUGINS):
                module.PLUGINS.append(dict(PLUGIN))
        elif module.__name__ == "kipoi.__main__":
            module.postproc_cmd_map.setdefault("maxent", "maxent")
            if _ours(sys.argv) and "--verbose" not in sys.argv:
                import logging

                # Kipoi's INFO lines (to stdout) and its postproc deprecation notice are not our
                # users' business; our own logger reports what matters
                logging.getLogger("kipoi").setLevel(logging.ERROR)
    except Exception:  # never break Kipoi because its internals moved
        pass


def _ours(argv) -> bool:
    """Whether this ``kipoi`` command runs our plugin (``kipoi maxent …``, ``kipoi postproc maxent …``)."""
    words = [word for word in argv[1:3] if not word.startswith("-")]
    return words[:1] == ["maxent"] or words[:2] == ["postproc", "maxent"]


class _Loader:  # duck-typed: importing importlib.abc would slow every start-up
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        if module.__name__ == "kipoi.__main__" and "--verbose" not in sys.argv:
            import warnings

            # Kipoi's script imports pkg_resources, which warns that it is deprecated: nothing
            # our users can act on (--verbose shows it)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
                self._loader.exec_module(module)
        else:
            self._loader.exec_module(module)
        _patch(module)


class _Finder:
    targets = ("kipoi.plugin", "kipoi.__main__")

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.targets:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def install() -> None:
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    for name in _Finder.targets:  # already imported (e.g. hook installed late)
        if name in sys.modules:
            _patch(sys.modules[name])


install()
