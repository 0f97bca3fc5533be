"""A local LXC host as a platform backend: the same CTs as on Proxmox, made by ralf with LXC.

The node lives in a network namespace of its own (``netns``) with a bridge inside it and no route
out; a Debian rootfs is built once with debootstrap (``rootfs``); each service with a ``*-lxc``
stack becomes a container from its service data (``containers``); packages reach the containers
only from a host-side cache served inside the namespace (``cache``). ``node`` ties them together
and is what the stack runner, the exec transport and ``ralf lab`` use.
"""
