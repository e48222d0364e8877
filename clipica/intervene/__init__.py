"""Interventions: move one component of an embedding and measure what changes.

- :mod:`clipica.intervene.edit`: the edit (:func:`edit_components`, :class:`Traversal`,
  :func:`component_stats`), on any :class:`~clipica.decompositions.LinearDecomposition`;
- :mod:`clipica.intervene.retrieval`: nearest dataset rows (:func:`retrieve_neighbours`,
  :func:`retrieval_traversal`) and decoded pixels (:func:`decoded_traversal`);
- :mod:`clipica.intervene.responses`: attribute probes with a selectivity number
  (:func:`fit_attribute_probes`, :func:`attribute_response`) and zero-shot prompt pairs
  (:func:`text_response`);
- :mod:`clipica.intervene.run`: all of them for one component (:func:`run_intervention`,
  :class:`InterventionResult` with ``to_dict``/``from_dict``, format tag ``clipica.intervene/1``).

Compute functions return data; :mod:`clipica.viz.traversal` draws the results
(``plot_intervention(result)``, ``plot_views(result)``).
"""

from clipica.intervene.edit import DEFAULT_ALPHAS, Traversal, component_stats, edit_components
from clipica.intervene.responses import (
    AttributeProbes,
    AttributeResponse,
    TextResponse,
    attribute_response,
    binary_attributes,
    default_prompt_pairs,
    fit_attribute_probes,
    selectivity,
    text_response,
)
from clipica.intervene.retrieval import (
    DecodedTraversal,
    RetrievalTraversal,
    decoded_traversal,
    retrieval_traversal,
    retrieve_neighbours,
)
from clipica.intervene.run import INTERVENE_FORMAT, InterventionResult, run_intervention

__all__ = [
    "DEFAULT_ALPHAS",
    "INTERVENE_FORMAT",
    "AttributeProbes",
    "AttributeResponse",
    "DecodedTraversal",
    "InterventionResult",
    "RetrievalTraversal",
    "TextResponse",
    "Traversal",
    "attribute_response",
    "binary_attributes",
    "component_stats",
    "decoded_traversal",
    "default_prompt_pairs",
    "edit_components",
    "fit_attribute_probes",
    "retrieval_traversal",
    "retrieve_neighbours",
    "run_intervention",
    "selectivity",
    "text_response",
]
