# Every value comes from the platform file: ralf renders each *-lxc stack's root module
# (src/ralf/tofu_config.py), which calls this module once.

variable "node_name" {
  description = "Proxmox node the CT lives on (proxmox.node)"
  type        = string
}

variable "vm_id" {
  description = "CT id (services.<svc>.ct_id)"
  type        = number
}

variable "hostname" {
  description = "CT hostname (services.<svc>.hostname)"
  type        = string
}

variable "description" {
  description = "Free text shown in the Proxmox UI"
  type        = string
  default     = "managed by ralf"
}

variable "ipv4_address" {
  description = "Static address with prefix, e.g. 10.10.20.10/16"
  type        = string

  validation {
    condition     = can(cidrhost(var.ipv4_address, 0))
    error_message = "The ipv4_address must look like 10.10.20.10/16."
  }
}

variable "ipv4_gateway" {
  description = "Default gateway (network.gateway); null = none"
  type        = string
  default     = null
}

variable "dns_servers" {
  description = "DNS servers (network.dns); empty = the node's"
  type        = list(string)
  default     = []
}

variable "dns_domain" {
  description = "DNS search domain (internal_domain); null = the node's"
  type        = string
  default     = null
}

variable "bridge" {
  description = "Bridge for eth0 (proxmox.bridge)"
  type        = string
  default     = "vmbr0"
}

variable "datastore_id" {
  description = "Storage for the root disk (proxmox.storage)"
  type        = string
  default     = "local-lvm"
}

variable "template_file_id" {
  description = "LXC template volume id (proxmox.lxc_template)"
  type        = string
}

variable "cores" {
  description = "CPU cores (size.cores)"
  type        = number
}

variable "memory_mb" {
  description = "Dedicated memory in MB (size.memory_mb)"
  type        = number
}

variable "swap_mb" {
  description = "Swap in MB (size.swap_mb)"
  type        = number
  default     = 0
}

variable "disk_gb" {
  description = "Root disk size in GB (size.disk_gb)"
  type        = number
}

variable "nesting" {
  description = "Enable the nesting feature (size.nesting); systemd's sandboxed units need it"
  type        = bool
  default     = true
}

variable "tags" {
  description = "Proxmox tags, lower case and sorted as Proxmox stores them"
  type        = list(string)
  default     = []

  validation {
    condition     = var.tags == sort(distinct([for t in var.tags : lower(t)]))
    error_message = "The tags must be lower case, sorted and unique (Proxmox stores them so; anything else drifts)."
  }
}

variable "ssh_public_key" {
  description = "Public key for root; empty = none. Only used when the CT is created (see lifecycle)."
  type        = string
  default     = ""
}
