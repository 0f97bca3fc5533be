terraform {
  required_version = ">= 1.10.0" # use_lockfile in the S3 backend (ralf.stacks.versions.TOFU_MIN)

  required_providers {
    proxmox = {
      source  = "bpg/proxmox"
      version = "~> 0.66"
    }
  }
}
