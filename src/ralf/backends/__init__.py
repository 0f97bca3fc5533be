"""Where the platform's CTs live: Proxmox (OpenTofu root modules, ``pct``) or a local LXC host (``lxc``)."""
