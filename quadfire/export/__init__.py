"""Export to neuromorphic formats: NIR graphs (LIF / IF, and QIF as a documented extension
node), loading back through nirtorch or into quadfire. Mapping and caveats: docs/export.md."""
from .graph import to_nir, write_nir
from .load import from_nir, load_nirtorch, nir_node_map, run_steps

__all__ = ["to_nir", "write_nir", "load_nirtorch", "run_steps", "from_nir", "nir_node_map"]
