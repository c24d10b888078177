"""Which emitter writes a backend's module: the dispatch over NumPy, JAX and
PyTorch, above the emitters it chooses (so that none of them imports it)."""

from .emit_jax import JaxEmitter
from .emit_torch import TorchEmitter
from .errors import MatdiffError
from .numpy_emit import Emitter, higher_module_source, module_source

BACKENDS = ("numpy", "jax", "torch")
_EMITTERS = {"numpy": Emitter, "jax": JaxEmitter, "torch": TorchEmitter}


def emitter_class(backend):
    try:
        return _EMITTERS[backend]
    except KeyError:
        raise MatdiffError(f"unknown backend {backend!r}: one of {', '.join(BACKENDS)}") from None


def source(problem, grads, backend="numpy"):
    """The module of value / value_and_gradient / gradient for a backend."""
    return module_source(problem, grads, emitter=emitter_class(backend))


def higher_source(h, backend="numpy"):
    return higher_module_source(h, emitter=emitter_class(backend))
