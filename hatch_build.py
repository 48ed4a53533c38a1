"""Hatch build hook: put ``kipoi_maxent_kipoi.pth`` at the wheel root (normal and editable
installs), and the shipped model specs inside the package."""
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if version == "editable":
            build_data["force_include_editable"]["kipoi_maxent_kipoi.pth"] = "kipoi_maxent_kipoi.pth"
        else:
            build_data["force_include"]["kipoi_maxent_kipoi.pth"] = "kipoi_maxent_kipoi.pth"
            build_data["force_include"]["model_specs"] = "kipoi_maxent/model_specs"
