"""Name components in words through the model's text encoder.

- :mod:`clipica.naming.names`: :func:`name_components`, :func:`name_from_embeddings`,
  :class:`ComponentNames`, :func:`match_prompts` (the method and its choices are in that
  module's docstring);
- :mod:`clipica.naming.chance`: the chance level a name must beat, negation pairs;
- :mod:`clipica.naming.vocabulary`: the built-in CelebA phrases (``vocab/``) and user
  vocabularies.
"""

from __future__ import annotations

from clipica._lazy import lazy_exports

_LAZY = {
    **dict.fromkeys(
        ["ComponentNames", "TextProjection", "fit_text_projection", "format_matches",
         "match_prompts", "name_components", "name_from_embeddings", "NAMES_FORMAT"],
        "clipica.naming.names"),
    **dict.fromkeys(["chance_threshold", "negation_pairs", "NULL_MAX_ROWS"], "clipica.naming.chance"),
    **dict.fromkeys(["builtin_vocabulary", "load_attribute_phrases", "load_vocabulary",
                     "BUILTIN_VOCABULARIES"], "clipica.naming.vocabulary"),
}
__all__ = list(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
