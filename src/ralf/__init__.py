"""ralf: run a Proxmox homelab platform Semaphore-first.

The package is a library first; :mod:`ralf.cli` is a thin layer over it.
"""

__version__ = "0.1.0"
