"""What the user's runbook and original seeder fix: the 28 template names and the standard order."""

# The 28 templates the user's seeder created (original-ralf.md §5.3), with their ONLY_STACKS lists.
ORIGINAL_28 = {
    "RALF Phase1 Infra Apply": "030-minio-lxc 020-postgres-lxc 034-gitea-lxc 040-semaphore-lxc",
    "RALF Phase1 Config Apply": "031-minio-config 021-postgres-config 035-gitea-config 041-semaphore-config",
    "RALF Phase1 Smoke": "phase1",
    "RALF All Infra Apply": "030-minio-lxc 020-postgres-lxc 034-gitea-lxc 040-semaphore-lxc 042-vaultwarden-lxc "
    "044-n8n-lxc 090-exo-lxc 110-synapse-lxc 112-mail-lxc",
    "RALF Full Platform Apply": "030-minio-lxc 031-minio-config 020-postgres-lxc 021-postgres-config 034-gitea-lxc "
    "035-gitea-config 040-semaphore-lxc 041-semaphore-config 042-vaultwarden-lxc 043-vaultwarden-config 044-n8n-lxc "
    "045-n8n-config 090-exo-lxc 091-exo-config 110-synapse-lxc 111-synapse-config 112-mail-lxc 113-mail-config",
    "RALF Full Platform Smoke": "platform",
    "RALF Vault Apply": "042-vaultwarden-lxc 043-vaultwarden-config",
    "RALF Automation Apply": "044-n8n-lxc 045-n8n-config",
    "RALF Communication Apply": "110-synapse-lxc 111-synapse-config 112-mail-lxc 113-mail-config",
    "RALF AI Apply": "090-exo-lxc 091-exo-config",
    "RALF Vault Infra Apply": "042-vaultwarden-lxc",
    "RALF Vault Config Apply": "043-vaultwarden-config",
    "RALF Automation Infra Apply": "044-n8n-lxc",
    "RALF Automation Config Apply": "045-n8n-config",
    "RALF Communication Infra Apply": "110-synapse-lxc 112-mail-lxc",
    "RALF Communication Config Apply": "111-synapse-config 113-mail-config",
    "RALF AI Infra Apply": "090-exo-lxc",
    "RALF AI Config Apply": "091-exo-config",
    "RALF All Config Apply": "031-minio-config 021-postgres-config 035-gitea-config 041-semaphore-config "
    "043-vaultwarden-config 045-n8n-config 111-synapse-config 113-mail-config 091-exo-config",
    "RALF Vaultwarden Apply": "042-vaultwarden-lxc 043-vaultwarden-config",
    "RALF N8N Apply": "044-n8n-lxc 045-n8n-config",
    "RALF Synapse Apply": "110-synapse-lxc 111-synapse-config",
    "RALF Mail Apply": "112-mail-lxc 113-mail-config",
    "RALF Exo Apply": "090-exo-lxc 091-exo-config",
    "RALF Vault Smoke": "vault",
    "RALF Automation Smoke": "automation",
    "RALF Communication Smoke": "communication",
    "RALF AI Smoke": "ai",
}

STANDARD = [
    "RALF Vault Apply", "RALF Vault Smoke", "RALF Automation Apply", "RALF Automation Smoke",
    "RALF Communication Apply", "RALF Communication Smoke", "RALF AI Apply", "RALF AI Smoke",
]

# A service the user adds to platform.yaml (indented as an entry under `services:`).
NEW_SERVICE_YAML = """  grafana:
    word: Grafana
    group: automation
    ct_id: 4060
    ip: 10.10.40.60
    hostname: grafana
    stacks: [046-grafana-lxc, 047-grafana-config]
"""
