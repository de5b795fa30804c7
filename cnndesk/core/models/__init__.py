"""Model registry (torch-free) and model building (torch, imported lazily in ``build``)."""

from cnndesk.core.models.registry import (  # noqa: F401
    ModelSpec,
    WeightsSource,
    default_model,
    get_spec,
    list_models,
)
