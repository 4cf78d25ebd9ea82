"""driftwatch: measure how far Docker images have drifted behind their distro's security updates."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
