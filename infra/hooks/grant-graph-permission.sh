#!/bin/sh
# Grants the rotator identity its Microsoft Graph application permissions:
# - Application.ReadWrite.OwnedBy, which it needs: it may then add and remove passwords only on the
#   app registrations that list it as an owner, never on the other apps of the tenant;
# - AuditLog.Read.All, only if asked: it reads the sign-in activity report, the evidence that an old
#   credential is no longer used before it is retired (ROTATION_RETIREMENT_EVIDENCE; the report needs
#   an Entra ID P1/P2 tenant). It reads every audit and sign-in log of the tenant, hence off unless
#   asked; without it `auto` lets the grace period decide (docs/deploy.md).
#
# Its own step, not part of the deployment, because granting an app role needs an Entra role a
# subscription Owner often lacks (Privileged Role Administrator, or Global Administrator): a refusal
# must not fail the deployment, and an administrator must be able to run it later. Each grant is off
# unless asked (ROTATION_GRANT_GRAPH_PERMISSION=true, ROTATION_GRANT_AUDIT_LOG=true); then it grants
# and retries while Entra replicates a new identity (a grant right after the identity is created can
# fail for a few minutes). Either way it prints the exact command when a grant is missing. Safe to
# run again: an existing grant is kept.
#
# Run by the postprovision hook (infra/hooks/postprovision.sh), or by an administrator:
#   ROTATOR_PRINCIPAL_ID=<object id> ROTATION_GRANT_GRAPH_PERMISSION=true sh infra/hooks/grant-graph-permission.sh
#   (with ROTATION_GRANT_AUDIT_LOG=true as well for the sign-in evidence)
# Exit status: 0 granted (or already, or not asked), 2 refused for lack of an Entra role, 1 otherwise.
set -eu

microsoft_graph_app_id=00000003-0000-0000-c000-000000000000
# Application permission ids, from the Microsoft Graph permissions reference.
owned_by_role_id=18a4783c-866b-4cc7-a460-3d5e5662c884  # Application.ReadWrite.OwnedBy
audit_log_role_id=b0afded3-3588-46d8-8b3d-9842eff778da # AuditLog.Read.All
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

print_admin_command() { # ROLE_ID SWITCH UNTIL_THEN
  cat <<EOF
An administrator who may grant app roles (Privileged Role Administrator or Global Administrator) runs, once:

  graph_sp=\$(az ad sp show --id $microsoft_graph_app_id --query id --output tsv)
  az rest --method POST --url "$assignments" \\
    --headers Content-Type=application/json \\
    --body "{\"principalId\": \"$principal\", \"resourceId\": \"\$graph_sp\", \"appRoleId\": \"$1\"}"

or, from a clone of this repository (it retries while Entra replicates a new identity):

  ROTATOR_PRINCIPAL_ID=$principal $2=true sh infra/hooks/grant-graph-permission.sh

$3
EOF
}

# 0 when the grant exists; 1 when it does not or cannot be read (the identity may not have replicated).
is_granted() { # GRAPH_SERVICE_PRINCIPAL_ID ROLE_ID
  count=$(az rest --method GET --url "$assignments" \
    --query "length(value[?appRoleId=='$2' && resourceId=='$1'])" --output tsv 2>/dev/null) || return 1
  [ -n "$count" ] && [ "$count" != "0" ]
}

graph_sp=$(az ad sp show --id "$microsoft_graph_app_id" --query id --output tsv 2>/dev/null || true)
# Set when Graph refuses a grant for lack of an Entra role: a second grant would be refused as well.
refused=false

# One app role, granted only when the variable SWITCH is true. UNTIL_THEN says what a missing grant
# costs; NOT_ASKED, when set, replaces the administrator's commands while the switch is off (for an
# optional permission). Returns 0 (held, granted or not asked), 2 (refused) or 1.
grant_role() { # ROLE_NAME ROLE_ID SWITCH UNTIL_THEN NOT_ASKED
  eval "asked=\${$3:-false}"
  if [ "$asked" != "true" ]; then
    if [ -n "$graph_sp" ] && is_granted "$graph_sp" "$2"; then
      echo "Microsoft Graph: the rotator identity holds $1."
      return 0
    fi
    echo "Microsoft Graph: $1 is not granted by this deployment ($3 is not true)."
    if [ -n "$5" ]; then
      echo "$5"
    else
      print_admin_command "$2" "$3" "$4"
    fi
    return 0
  fi

  if [ -z "$graph_sp" ]; then
    echo "error: could not read Microsoft Graph's service principal (az ad sp show --id $microsoft_graph_app_id): is az signed in to the right tenant?" >&2
    return 1
  fi
  if [ "$refused" = "true" ] && ! is_granted "$graph_sp" "$2"; then
    echo "Microsoft Graph: $1 is not tried either (the grant above was refused)." >&2
    print_admin_command "$2" "$3" "$4" >&2
    return 2
  fi

  body="{\"principalId\": \"$principal\", \"resourceId\": \"$graph_sp\", \"appRoleId\": \"$2\"}"
  output=""
  for delay in $retry_delays last; do
    if is_granted "$graph_sp" "$2"; then
      echo "Microsoft Graph: the rotator identity holds $1."
      return 0
    fi
    if output=$(az rest --method POST --url "$assignments" --headers Content-Type=application/json \
      --body "$body" --output none 2>&1); then
      echo "Microsoft Graph: granted $1 to the rotator identity ($principal)."
      return 0
    fi
    case "$output" in
      *Authorization_RequestDenied* | *"Insufficient privileges"* | *Forbidden*)
        refused=true
        echo "Microsoft Graph: you may not grant app roles in this tenant, so the rotator identity does not hold $1 yet." >&2
        print_admin_command "$2" "$3" "$4" >&2
        return 2
        ;;
      *"already exists"*)
        echo "Microsoft Graph: the rotator identity holds $1."
        return 0
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

  echo "error: could not grant $1 to $principal:" >&2
  printf '%s\n' "$output" | sed 's/^/  /' >&2
  print_admin_command "$2" "$3" "$4" >&2
  return 1
}

owned_by=0
grant_role Application.ReadWrite.OwnedBy "$owned_by_role_id" ROTATION_GRANT_GRAPH_PERMISSION \
  "Until then every rotation fails with a Graph 403 (RotationFailed, and its alert)." "" || owned_by=$?

audit_log=0
grant_role AuditLog.Read.All "$audit_log_role_id" ROTATION_GRANT_AUDIT_LOG \
  "Until then retirement waits out the grace period only, without sign-in evidence (EvidenceUnavailable); the report also needs Entra ID P1/P2." \
  "Retirement waits out the grace period only, without sign-in evidence. To retire on evidence (Entra ID P1/P2 tenant): ROTATOR_PRINCIPAL_ID=$principal ROTATION_GRANT_AUDIT_LOG=true sh infra/hooks/grant-graph-permission.sh, by an administrator." ||
  audit_log=$?

# The worst outcome decides: an error, then a refusal, then success.
for status in 1 2; do
  if [ "$owned_by" -eq "$status" ] || [ "$audit_log" -eq "$status" ]; then
    exit "$status"
  fi
done
exit 0
