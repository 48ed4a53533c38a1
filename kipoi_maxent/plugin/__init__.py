"""Extension points (pluggy). A plugin is a module or object with functions marked
``@kipoi_maxent.plugin.impl`` implementing hooks of :mod:`kipoi_maxent.plugin.spec`, made
known through the entry-point group ``kipoi_maxent``::

    # pyproject.toml of a third-party package
    [project.entry-points.kipoi_maxent]
    my_plugin = "my_package.kipoi_maxent_plugin"

or registered at run time with :func:`kipoi_maxent.plugin.manager.register`.
``kipoi maxent plugins`` lists what is loaded.
"""
import pluggy

#: Project name of the hooks and the entry-point group.
NAME = "kipoi_maxent"
#: Marks a hook implementation: all a plugin author imports.
impl = pluggy.HookimplMarker(NAME)

__all__ = ["NAME", "impl"]
