"""Export to neuromorphic formats: NIR graphs (LIF / IF, and QIF as a documented extension
node), loading back through nirtorch or into quadfire. Mapping and caveats: docs/export.md."""
from .graph import chain, from_nir, load_nirtorch, nir_node_map, run_steps, to_nir, write_nir

__all__ = ["chain", "to_nir", "write_nir", "load_nirtorch", "run_steps", "from_nir", "nir_node_map"]
