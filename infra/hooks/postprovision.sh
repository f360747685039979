#!/bin/sh
# azd postprovision hook (azure.yaml): the checks and grants that follow the deployment.
#   1. check-vault-rbac.sh: every managed vault uses Azure RBAC (else the rotator's role grants nothing);
#   2. grant-graph-permission.sh: Microsoft Graph Application.ReadWrite.OwnedBy for the rotator
#      identity, only when ROTATION_GRANT_GRAPH_PERMISSION=true, and the sign-in evidence permission,
#      only when ROTATION_GRANT_AUDIT_LOG=true; otherwise, or when the deployer may not grant them,
#      the commands an administrator runs.
# A vault without RBAC stops `azd up` (the rotator could not work); a missing Graph grant does not
# (the code deploys, and an administrator grants it later).
set -eu

here=$(dirname "$0")
status=0
sh "$here/check-vault-rbac.sh" || status=$?
grant=0
sh "$here/grant-graph-permission.sh" || grant=$?
if [ "$grant" -ne 0 ]; then
  echo "warning: a Microsoft Graph permission is not granted yet (see above); the deployment goes on." >&2
fi
exit "$status"
