"""Shared by the ExecuTorch tests: exported artifacts, built once per session (export costs seconds each)."""

import pytest

MAX_SEQ = 64


@pytest.fixture(scope="session")
def et_artifact(hf_checkpoint, tmp_path_factory):
    """et_artifact(family, form, head, xnnpack) -> artifact dir."""
    from edgebit.exporters.executorch.export import export_executorch

    made = {}

    def make(family="bitnet", form="packed", head="fp32", xnnpack=False):
        key = (family, form, head, xnnpack)
        if key not in made:
            out = tmp_path_factory.mktemp("et") / "artifact"
            made[key] = export_executorch(hf_checkpoint(family, form, family == "bitnet"), out, MAX_SEQ, head, xnnpack)
        return made[key]

    return make
