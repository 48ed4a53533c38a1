"""PyTorch backend: Φ from a forward hook on a Kipoi ``PyTorchModel``'s ``torch.nn.Module``.

Layers are named by their ``named_modules()`` path, Kipoi's own convention
(``PyTorchModel.get_layer``): ``"19"`` is the 20th child of a ``Sequential``, ``"model.1.3"``
a nested one. Φ is the **output** of the named module; ``auto`` takes the **input** of the
last ``nn.Linear`` (in registration order), whose weight then gives the output kernel.

Some zoo models run their layers on several copies of each input stacked along the batch axis
(DeepSEA/predict: the sequence, then its reverse complement; outputs averaged at the end). The
hooked module then sees ``copies × n`` rows, copy-major; Φ of an input is the concatenation of
its copies' activations, ``(n, copies × k)``, and the output kernel is the final Linear's weight
stacked ``copies`` times, so the distance sums over the copies.
"""
from __future__ import annotations

import numpy as np

from kipoi_maxent.backends.base import PenultimateModel, fixed_input_shape, schema_input_shape, spec_output_kernel
from kipoi_maxent.spec import AUTO, ModelSpec

#: How many module names an unknown-layer error lists before "…".
LISTED_MODULES = 30
#: Rows of the construction-time probe batch (random inputs; one forward per row and one for all).
PROBE_ROWS = 2
#: Relative tolerance of the probe's check that an input's Φ does not depend on its batch.
BATCH_RTOL = 1e-4


def torch_module_of(kipoi_model):
    """The ``torch.nn.Module`` in a Kipoi model's ``.model`` attribute, or ``None``."""
    import torch

    inner = getattr(kipoi_model, "model", None)
    return inner if isinstance(inner, torch.nn.Module) else None


def penultimate_model(kipoi_model, spec: ModelSpec) -> PenultimateModel | None:
    """Build Φ for a Kipoi PyTorch model; ``None`` if ``kipoi_model`` holds no ``torch.nn.Module``.

    Parameters
    ----------
    kipoi_model : kipoi.model.PyTorchModel (or any Kipoi model whose ``.model`` is an ``nn.Module``)
        Its ``schema.inputs.shape`` gives the input shape (torch modules do not carry one).
    spec : ModelSpec
        ``penultimate_layer``: a ``named_modules()`` path (Φ = that module's output, flattened
        per input) or ``"auto"`` (Φ = the input of the last ``nn.Linear``). ``output_weights``:
        optional; default the last ``nn.Linear``'s weight, transposed, which then must receive
        exactly Φ (only identity-at-inference modules such as ``Dropout`` or reshapes between).

    Returns
    -------
    PenultimateModel
        ``activations``: ``(n, *input_shape)`` float32 -> ``(n, k)`` float32, computed in eval
        mode under ``torch.inference_mode`` on the module's device (CPU for Kipoi's CPU builds).
    """
    import torch

    module = torch_module_of(kipoi_model)
    if module is None:
        return None
    module.eval()  # dropout is the identity and batch norm uses its running statistics
    input_shape = schema_input_shape(kipoi_model)
    run = _HookedForward(module)
    named = run.named
    linears = [name for name, child in named.items() if isinstance(child, torch.nn.Linear)]
    output_name = linears[-1] if linears else None
    if output_name is None and (spec.penultimate_layer == AUTO or spec.output_weights is None):
        raise ValueError(
            f"the PyTorch model {type(module).__name__} has no nn.Linear layer, so neither the penultimate "
            "layer (auto) nor the output weights can be found: name the module whose output is Φ in the "
            "spec's penultimate_layer and give output_weights (a .npy file)"
        )
    if spec.penultimate_layer == AUTO:
        hooked_name, on_input = output_name, True
        description = f"input of {output_name!r} (last nn.Linear)"
    else:
        hooked_name, on_input = str(spec.penultimate_layer), False
        if hooked_name not in named or hooked_name == "":
            raise ValueError(_unknown_module_message(hooked_name, module))
        description = f"output of {hooked_name!r} ({type(named[hooked_name]).__name__})"
    watched = {"phi": (hooked_name, on_input)}

    # One probe forward (random inputs) checks what cannot be seen in the module tree.
    probe = np.random.default_rng(0).normal(size=(PROBE_ROWS,) + fixed_input_shape(input_shape, spec))
    probe = probe.astype(np.float32)
    kernel_from_linear = spec.output_weights is None
    probe_rows = run(probe, {**watched, "linear_input": (output_name, True)} if kernel_from_linear else watched)
    if len(probe_rows["phi"]) % PROBE_ROWS:
        raise ValueError(
            f"module {hooked_name!r} produced {len(probe_rows['phi'])} rows for a batch of {PROBE_ROWS} inputs; "
            "kipoi_maxent needs whole rows per input: choose another penultimate_layer"
        )
    copies = len(probe_rows["phi"]) // PROBE_ROWS
    if kernel_from_linear and not on_input:
        linear_input = probe_rows["linear_input"]
        if linear_input.shape != probe_rows["phi"].shape or not torch.equal(linear_input, probe_rows["phi"]):
            raise ValueError(_not_feeding_message(hooked_name, output_name, named))

    def activations(x: np.ndarray) -> np.ndarray:
        rows = run(x, watched)["phi"]
        if len(rows) != copies * len(x):
            raise ValueError(
                f"module {hooked_name!r} produced {len(rows)} rows for {len(x)} inputs, expected {copies} "
                "per input as at construction"
            )
        return _per_input(rows, len(x))

    together = _per_input(probe_rows["phi"], PROBE_ROWS)
    alone = np.concatenate([activations(probe[i:i + 1]) for i in range(PROBE_ROWS)])
    if not np.allclose(together, alone, rtol=BATCH_RTOL, atol=BATCH_RTOL * float(np.abs(alone).max())):
        raise ValueError(
            f"the activations of {description} for one input depend on the other inputs of its batch "
            "(rows mixed across inputs, or batch statistics in eval mode): choose another penultimate_layer"
        )
    width = together.shape[1]
    if kernel_from_linear:
        weight = named[output_name].weight.detach().cpu().numpy().astype(np.float64)
        kernel = np.tile(weight.T, (copies, 1))
    else:
        kernel = spec_output_kernel(spec, width, description)
    if copies > 1:
        description += f", {copies} copies per input side by side ({copies} × {width // copies} units)"
    return PenultimateModel(
        activations=activations,
        output_kernel=kernel,
        input_shape=input_shape,
        layer=description,
        framework=f"pytorch {torch.__version__}",
    )


class _HookedForward:
    """Runs a module on numpy inputs and returns what chosen modules saw.

    ``run(x, watched)``: ``watched`` maps a key to ``(module path, on_input)``; the result maps
    the key to that module's output (or, ``on_input``, its first input) over all its calls in
    the forward pass, as ``(rows, features)`` on the CPU. Hooks live only during the call.
    """

    def __init__(self, module):
        import torch

        self.module = module
        self.named = dict(module.named_modules())
        parameter = next(module.parameters(), None)
        self.device = parameter.device if parameter is not None else torch.device("cpu")
        self.dtype = parameter.dtype if parameter is not None else torch.float32

    def __call__(self, x: np.ndarray, watched: dict) -> dict:
        import torch

        captured = {key: [] for key in watched}
        handles = []
        for key, (name, on_input) in watched.items():
            child = self.named[name]
            register = child.register_forward_pre_hook if on_input else child.register_forward_hook
            handles.append(register(_recorder(captured[key], name)))
        tensor = torch.from_numpy(np.ascontiguousarray(x)).to(device=self.device, dtype=self.dtype)
        try:
            with torch.inference_mode():
                self.module(tensor)
        finally:
            for handle in handles:
                handle.remove()
        return {key: _stack_calls(captured[key], name).cpu() for key, (name, _) in watched.items()}


def _recorder(store: list, name: str):
    """A forward hook (or pre-hook) appending a detached copy of the module's output (or first input).

    The copy keeps later in-place operations from altering what was recorded.
    """
    import torch

    def hook(child, args, output=None):
        value = args[0] if output is None else output
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"module {name!r} ({type(child).__name__}) gives a {type(value).__name__}, not a tensor; "
                "choose a penultimate_layer whose output is a single tensor"
            )
        store.append(value.detach().clone())

    return hook


def _stack_calls(calls: list, name: str):
    """Tensors of every call of one module -> ``(rows, features)``; calls stack copy-major."""
    import torch

    if not calls:
        raise ValueError(f"module {name!r} is not used in the model's forward pass; choose another penultimate_layer")
    return torch.cat([call.reshape(call.shape[0], -1) for call in calls])


def _per_input(rows, n: int) -> np.ndarray:
    """``(copies × n, k)`` copy-major rows (tensor) -> ``(n, copies × k)`` float32 array.

    Each input's copies end up side by side.
    """
    copies, width = len(rows) // n, rows.shape[1]
    return rows.reshape(copies, n, width).transpose(0, 1).reshape(n, copies * width).float().numpy()


def _unknown_module_message(wanted: str, module) -> str:
    names = [name for name, _ in module.named_modules() if name]
    listed = ", ".join(names[:LISTED_MODULES]) + (", …" if len(names) > LISTED_MODULES else "")
    return (
        f"penultimate_layer {wanted!r} is not a module of the PyTorch model {type(module).__name__}: name a "
        f"module by its named_modules() path (Kipoi's convention), or use auto; available modules "
        f"({len(names)}): {listed}"
    )


def _not_feeding_message(hooked_name: str, output_name: str, named: dict) -> str:
    order = list(named)
    start, end = order.index(hooked_name), order.index(output_name)
    if start > end:
        where = "it comes after that Linear"
    else:
        # leaf modules run between the two (neither inside the hooked module nor containing the Linear)
        between = [
            f"{name} ({type(named[name]).__name__})" for name in order[start + 1:end]
            if not name.startswith(hooked_name + ".") and not output_name.startswith(name + ".")
            and next(named[name].children(), None) is None
        ]
        where = "modules in between: " + (", ".join(between) or "none")
    return (
        f"the output of module {hooked_name!r} is not what the final nn.Linear {output_name!r} receives "
        f"({where}), so the output weights of {hooked_name!r} are unknown: choose the module whose output "
        "feeds that Linear (or auto), or give output_weights (a .npy file) in the spec"
    )
