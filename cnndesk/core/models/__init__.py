"""Models the app knows, torch-free: the registry, the model-file schema, reading and writing model files, downloads and management."""

from cnndesk.core.models.registry import (  # noqa: F401
    ModelSpec,
    WeightsSource,
    default_model,
    get_spec,
    list_models,
)
