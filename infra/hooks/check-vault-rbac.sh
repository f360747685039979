#!/bin/sh
# Checks that every managed vault authorizes data-plane calls with Azure RBAC (enableRbacAuthorization).
#
# The deployment grants the rotator Key Vault Secrets Officer on each vault; on a vault that still uses
# access policies that role grants nothing, and every rotation would fail with a 403. The vaults this
# deployment creates use RBAC; a vault you bring (ROTATION_EXISTING_VAULTS) might not, so this stops
# `azd up` with what to do rather than deploying a rotator that cannot work.
#
# Run by the postprovision hook (infra/hooks/postprovision.sh); ROTATION_VAULT_IDS is an azd output.
set -eu

ids=${ROTATION_VAULT_IDS:-}
if [ -z "$ids" ]; then
  echo "error: ROTATION_VAULT_IDS is not set: run this through azd after \`azd provision\`" >&2
  exit 1
fi

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT

status=0
for id in $(printf '%s' "$ids" | tr ',' ' '); do
  name=${id##*/}
  group=$(printf '%s' "$id" | sed -n 's|.*/[Rr]esource[Gg]roups/\([^/]*\)/.*|\1|p')
  if ! rbac=$(az resource show --ids "$id" --query properties.enableRbacAuthorization --output tsv 2>"$errors"); then
    echo "error: could not read vault $name (resource group $group):" >&2
    sed 's/^/  /' "$errors" >&2
    status=1
    continue
  fi
  if [ "$(printf '%s' "$rbac" | tr '[:upper:]' '[:lower:]')" = "true" ]; then
    echo "Key Vault: $name authorizes with Azure RBAC."
    continue
  fi
  status=1
  cat >&2 <<EOF
error: vault $name (resource group $group) authorizes with access policies, not Azure RBAC
  (enableRbacAuthorization is not true), so the rotator's Key Vault Secrets Officer role grants nothing
  there and every rotation would fail with a 403. Either switch the vault to RBAC - first give each
  identity that reads it through an access policy an equivalent role (e.g. Key Vault Secrets User on
  the vault), because the policies stop counting at once:

    az keyvault update --name $name --resource-group $group --enable-rbac-authorization true

  or take it out of ROTATION_EXISTING_VAULTS. Then run azd up again.
EOF
done
exit "$status"
