"""Thin cloud entry points (AWS Lambda, Google Cloud Functions) over `core`."""

from __future__ import annotations

import logging

from core.progress import WIRE_LOGGERS


def hold_wire_loggers() -> None:
    """Keep the cloud SDKs' loggers at INFO or above, whatever the platform sets the root
    logger to (`AWS_LAMBDA_LOG_LEVEL=DEBUG`, a debug-level Cloud Run service): their DEBUG
    records dump request and response bodies — a Secrets Manager answer holds the docker
    config with its passwords, an ECR answer a registry password. Same rule as the CLI's
    `core.progress.configure_logging`."""
    for name in WIRE_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.INFO))
