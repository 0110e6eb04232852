"""The embedded Videos API service: a complete, stateful implementation of the contract."""

from remix_pipeline.service.app import create_app
from remix_pipeline.service.config import FaultConfig, ServiceConfig, default_service_config
from remix_pipeline.service.inprocess import embedded_transport

__all__ = [
    "FaultConfig",
    "ServiceConfig",
    "create_app",
    "default_service_config",
    "embedded_transport",
]
