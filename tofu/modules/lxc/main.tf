# One unprivileged Ubuntu LXC on Proxmox. Every *-lxc stack of the platform uses this module.

locals {
  ssh_keys = trimspace(var.ssh_public_key) == "" ? [] : [trimspace(var.ssh_public_key)]
}

resource "proxmox_virtual_environment_container" "this" {
  node_name     = var.node_name
  vm_id         = var.vm_id
  description   = var.description
  tags          = var.tags
  unprivileged  = true
  started       = true
  start_on_boot = true

  # Always written, so an explicit "false" does not drift against what Proxmox reports. Nesting is
  # what systemd's sandboxed units (logind, resolved, networkd, and packaged services) need in an
  # unprivileged Ubuntu 24.04 CT; Proxmox turns it on by default for such CTs.
  features {
    nesting = var.nesting
  }

  initialization {
    hostname = var.hostname

    ip_config {
      ipv4 {
        address = var.ipv4_address
        gateway = var.ipv4_gateway
      }
    }

    dynamic "dns" {
      for_each = length(var.dns_servers) > 0 || var.dns_domain != null ? [1] : []
      content {
        servers = var.dns_servers
        domain  = var.dns_domain
      }
    }

    user_account {
      keys = local.ssh_keys
    }
  }

  network_interface {
    name   = "eth0"
    bridge = var.bridge
  }

  disk {
    datastore_id = var.datastore_id
    size         = var.disk_gb
  }

  memory {
    dedicated = var.memory_mb
    swap      = var.swap_mb
  }

  cpu {
    cores = var.cores
  }

  operating_system {
    template_file_id = var.template_file_id
    type             = "ubuntu"
  }

  lifecycle {
    # The key and the template only matter when the CT is created; a different key in a later run
    # (the original's TF_VAR_ssh_public_key override) or a newer template must never replace a
    # running CT and its data.
    ignore_changes = [
      initialization[0].user_account,
      operating_system[0].template_file_id,
      operating_system[0].type, # some original CTs were created as "unmanaged"
    ]
  }
}
