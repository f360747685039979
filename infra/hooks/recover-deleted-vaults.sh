#!/bin/sh
# azd preprovision hook (azure.yaml): bring back the vaults an earlier `azd down` of this environment
# left soft-deleted, so that `azd up` after `azd down` works.
#
# `azd down` deletes the rotator's resource group, and with it the vaults the deployment created. Key
# Vault keeps a deleted vault (and its secrets) for 90 days, and purge protection keeps its name taken
# all that time, so creating a vault of the same name fails. The deleted vaults keep their tags, so
# this finds the ones tagged azd-env-name=<this environment> and hands their names to the deployment
# (ROTATION_RECOVER_VAULT_NAMES -> recoverVaultNames), which recovers those it would create anyway
# (createMode recover) into the recreated resource group. Vaults it no longer creates stay deleted.
set -eu

env_name=${AZURE_ENV_NAME:-}
if [ -z "$env_name" ]; then
  echo "error: AZURE_ENV_NAME is not set: run this through azd" >&2
  exit 1
fi

# azd environment names are letters, digits and hyphens, so the name is safe inside the query.
if ! names=$(az keyvault list-deleted --resource-type vault \
  --query "[?properties.tags.\"azd-env-name\"=='$env_name'].name" --output tsv); then
  echo "warning: could not list soft-deleted vaults; a vault of this environment deleted by azd down will fail to be created again (docs/deploy.md, 'After azd down')." >&2
  azd env set ROTATION_RECOVER_VAULT_NAMES '[]'
  exit 0
fi

json=""
for name in $names; do
  json="$json${json:+,}\"$name\""
done
azd env set ROTATION_RECOVER_VAULT_NAMES "[$json]"
if [ -n "$json" ]; then
  echo "Key Vault: recovering the soft-deleted vault(s) of environment $env_name with their secrets: $(echo $names)"
  echo "  (purge protection keeps a deleted vault's name taken for 90 days; see docs/deploy.md, 'After azd down')."
fi
