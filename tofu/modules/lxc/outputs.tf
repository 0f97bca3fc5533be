output "vm_id" {
  description = "The CT id"
  value       = proxmox_virtual_environment_container.this.vm_id
}

output "ipv4_address" {
  description = "The CT's static address with prefix"
  value       = var.ipv4_address
}
