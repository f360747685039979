#!/bin/sh
# Grants the rotator identity the Microsoft Graph application permission Application.ReadWrite.OwnedBy:
# it may then add and remove passwords only on the app registrations that list it as an owner, never
# on the other apps of the tenant.
#
# Its own step, not part of the deployment, because granting an app role needs an Entra role a
# subscription Owner often lacks (Privileged Role Administrator, or Global Administrator): a refusal
# must not fail the deployment, and an administrator must be able to run it later. It is off unless
# ROTATION_GRANT_GRAPH_PERMISSION=true; then it grants and retries while Entra replicates a new
# identity (a grant right after the identity is created can fail for a few minutes). Either way it
# prints the exact command when the grant is missing. Safe to run again: an existing grant is kept.
#
# Run by the postprovision hook (infra/hooks/postprovision.sh), or by an administrator:
#   ROTATOR_PRINCIPAL_ID=<object id> ROTATION_GRANT_GRAPH_PERMISSION=true sh infra/hooks/grant-graph-permission.sh
# Exit status: 0 granted (or already, or not asked), 2 refused for lack of an Entra role, 1 otherwise.
set -eu

microsoft_graph_app_id=00000003-0000-0000-c000-000000000000
# Application.ReadWrite.OwnedBy (application permission), from the Microsoft Graph permissions reference.
owned_by_role_id=18a4783c-866b-4cc7-a460-3d5e5662c884
# Seconds between attempts while a new identity replicates (about six minutes in all).
retry_delays="15 30 45 60 60 60 60 60"

principal=${ROTATOR_PRINCIPAL_ID:-}
if [ -z "$principal" ]; then
  echo "error: ROTATOR_PRINCIPAL_ID is not set (the object id of the rotator identity: azd env get-values)" >&2
  exit 1
fi

# Microsoft Graph of the cloud az is signed in to (https://graph.microsoft.com/ in the public cloud).
graph=$(az cloud show --query endpoints.microsoftGraphResourceId --output tsv 2>/dev/null || true)
graph=${graph%/}
if [ -z "$graph" ]; then
  graph=https://graph.microsoft.com
fi
assignments="$graph/v1.0/servicePrincipals/$principal/appRoleAssignments"

print_admin_command() {
  cat <<EOF
An administrator who may grant app roles (Privileged Role Administrator or Global Administrator) runs, once:

  graph_sp=\$(az ad sp show --id $microsoft_graph_app_id --query id --output tsv)
  az rest --method POST --url "$assignments" \\
    --headers Content-Type=application/json \\
    --body "{\"principalId\": \"$principal\", \"resourceId\": \"\$graph_sp\", \"appRoleId\": \"$owned_by_role_id\"}"

or, from a clone of this repository (it retries while Entra replicates a new identity):

  ROTATOR_PRINCIPAL_ID=$principal ROTATION_GRANT_GRAPH_PERMISSION=true sh infra/hooks/grant-graph-permission.sh

Until then every rotation fails with a Graph 403 (RotationFailed, and its alert).
EOF
}

# 0 when the grant exists; 1 when it does not or cannot be read (the identity may not have replicated).
is_granted() { # GRAPH_SERVICE_PRINCIPAL_ID
  count=$(az rest --method GET --url "$assignments" \
    --query "length(value[?appRoleId=='$owned_by_role_id' && resourceId=='$1'])" --output tsv 2>/dev/null) || return 1
  [ -n "$count" ] && [ "$count" != "0" ]
}

graph_sp=$(az ad sp show --id "$microsoft_graph_app_id" --query id --output tsv 2>/dev/null || true)

if [ "${ROTATION_GRANT_GRAPH_PERMISSION:-false}" != "true" ]; then
  if [ -n "$graph_sp" ] && is_granted "$graph_sp"; then
    echo "Microsoft Graph: the rotator identity holds Application.ReadWrite.OwnedBy."
    exit 0
  fi
  echo "Microsoft Graph: Application.ReadWrite.OwnedBy is not granted by this deployment (ROTATION_GRANT_GRAPH_PERMISSION is not true)."
  print_admin_command
  exit 0
fi

if [ -z "$graph_sp" ]; then
  echo "error: could not read Microsoft Graph's service principal (az ad sp show --id $microsoft_graph_app_id): is az signed in to the right tenant?" >&2
  exit 1
fi

body="{\"principalId\": \"$principal\", \"resourceId\": \"$graph_sp\", \"appRoleId\": \"$owned_by_role_id\"}"
output=""
for delay in $retry_delays last; do
  if is_granted "$graph_sp"; then
    echo "Microsoft Graph: the rotator identity holds Application.ReadWrite.OwnedBy."
    exit 0
  fi
  if output=$(az rest --method POST --url "$assignments" --headers Content-Type=application/json \
    --body "$body" --output none 2>&1); then
    echo "Microsoft Graph: granted Application.ReadWrite.OwnedBy to the rotator identity ($principal)."
    exit 0
  fi
  case "$output" in
    *Authorization_RequestDenied* | *"Insufficient privileges"* | *Forbidden*)
      echo "Microsoft Graph: you may not grant app roles in this tenant, so the rotator identity does not hold Application.ReadWrite.OwnedBy yet." >&2
      print_admin_command >&2
      exit 2
      ;;
    *"already exists"*)
      echo "Microsoft Graph: the rotator identity holds Application.ReadWrite.OwnedBy."
      exit 0
      ;;
  esac
  if [ "$delay" = "last" ]; then
    break
  fi
  # Typically the new identity is not known to every Entra replica yet (Request_ResourceNotFound, or
  # an invalid principalId): waiting fixes it.
  echo "Microsoft Graph: not granted yet ($(printf '%s\n' "$output" | head -n 1)); retrying in $delay s." >&2
  sleep "$delay"
done

echo "error: could not grant Application.ReadWrite.OwnedBy to $principal:" >&2
printf '%s\n' "$output" | sed 's/^/  /' >&2
print_admin_command >&2
exit 1
