"""Sphinx configuration of quadfire's API reference, generated from the docstrings.

    python -m sphinx -W -b html docs/api docs/api/_build    (pip install -e '.[docs]')

tests/test_docs_api.py builds it the same way, warnings as errors. Every module of the
package gets one page (autosummary walks the package), so a new module is documented, and
its docstrings checked, the moment it exists.
"""
import quadfire

project = "quadfire"
release = version = quadfire.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon"]
templates_path = ["_templates"]
exclude_patterns = ["_build"]
autosummary_generate = True
# A package's __init__ re-exports names that its submodules document: each object is
# documented once, on the page of the module that defines it.
autosummary_ignore_module_all = True
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
# torch's own docstrings (nn.Module.forward, autograd.Function.forward) are not quadfire's.
autodoc_inherit_docstrings = False
# Signatures stay as written; types in the docstrings' text, not repeated in descriptions.
autodoc_typehints = "signature"
# `x` in a docstring is code (a name, a shape), as on GitHub, not a book title.
default_role = "literal"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = "alabaster"
html_title = f"quadfire {release} API reference"
