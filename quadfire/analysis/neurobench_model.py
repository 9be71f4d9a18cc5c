"""A quadfire model behind NeuroBench's model interface (needs the `neurobench` package; use it
through `quadfire.analysis.neurobench_metrics`, which checks that it is installed).

NeuroBench finds a network's spiking layers by type: `NeuroBenchModel.activation_layers`
returns the children that are instances of its ``activation_modules``, to which
`QuadfireModel` adds `MultiStepNeuron`, the base of every quadfire neuron. Each such layer gets
a `NeuronHook` that NeuroBench's metrics read; quadfire's is filled by the neuron's own
observer (`MultiStepNeuron.register_observer`) rather than by torch hooks, because one call of
a quadfire neuron runs all T steps while NeuroBench's hooks expect one call per step (the
snnTorch convention) when they record membrane potentials.
"""
from __future__ import annotations

import torch
from neurobench.hooks.layer import LayerHook
from neurobench.hooks.neuron import NeuronHook
from neurobench.models import NeuroBenchModel

from ..functional import fire_reset
from ..neurons import MultiStepNeuron


class ObservedNeuronHook(NeuronHook):
    """NeuroBench's record of one quadfire spiking layer.

    Per forward call: ``activation_inputs`` gets ``(x,)`` and ``activation_outputs`` the
    spikes ``[T, N, ...]``. Per time step t: ``pre_fire_mem_potential`` gets the membrane
    U[t-1] the step starts from (rest for t = 1) and ``post_fire_mem_potential`` the U[t] it
    leaves (after fire, reset and floor), the state the neuron carries between steps, as
    snnTorch's ``mem`` before and after each one-step call.
    """

    def __init__(self, layer: MultiStepNeuron, name: str | None = None):
        super().__init__(None, name)  # no torch hooks: the observer reports every call
        self.layer = layer
        self.observer = layer.register_observer(self._record)

    def _record(self, module: MultiStepNeuron, x: torch.Tensor, out) -> None:
        self.activation_inputs.append((x,))
        self.activation_outputs.append(out.spikes)
        # U[t] from the charged potentials H[t] the run traced, through the same fire/reset
        # step the kernels compute (quadfire.functional.steps).
        _, u = fire_reset(out.trace, module.params(x.dim() - 1))
        self.pre_fire_mem_potential += [module.rest_state(x[0]).to(u.dtype), *u[:-1].unbind(0)]
        self.post_fire_mem_potential += list(u.unbind(0))

    def close(self) -> None:
        self.observer.remove()


class QuadfireModel(NeuroBenchModel):
    """`net` (a quadfire model: time-major in, logits ``[T, N, classes]`` out) in NeuroBench's
    layout: batches come batch first (``[N, T, ...]`` for time-major data, ``[N, C, H, W]``
    images for static data, which the model repeats over T itself) and logits go back batch
    first, ``[N, T, classes]``, for NeuroBench's postprocessors."""

    def __init__(self, net: torch.nn.Module, time_major: bool):
        super().__init__()
        self.net, self.time_major = net.eval(), time_major
        self.add_activation_module(MultiStepNeuron)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.transpose(0, 1) if self.time_major else batch
        with torch.no_grad():
            return self.net(x).transpose(0, 1)

    def __net__(self) -> torch.nn.Module:
        return self.net

    def register_hooks(self) -> None:
        """NeuroBench's registration, with `ObservedNeuronHook` for quadfire's neurons."""
        for found in self.activation_layers():
            layer, name = found["layer"], found["layer_name"]
            hook = ObservedNeuronHook if isinstance(layer, MultiStepNeuron) else NeuronHook
            self.activation_hooks.append(hook(layer, name))
        self.connection_hooks += [LayerHook(layer) for layer in self.connection_layers()]
