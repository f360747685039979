# azd postprovision hook (azure.yaml), the PowerShell twin of postprovision.sh:
#   1. check-vault-rbac.ps1: every managed vault uses Azure RBAC (else the rotator's role grants nothing);
#   2. grant-graph-permission.ps1: Microsoft Graph Application.ReadWrite.OwnedBy for the rotator
#      identity, only when ROTATION_GRANT_GRAPH_PERMISSION=true, and the sign-in evidence permission,
#      only when ROTATION_GRANT_AUDIT_LOG=true; otherwise, or when the deployer may not grant them,
#      the commands an administrator runs.
# A vault without RBAC stops `azd up` (the rotator could not work); a missing Graph grant does not
# (the code deploys, and an administrator grants it later).
& (Join-Path $PSScriptRoot 'check-vault-rbac.ps1')
$status = $LASTEXITCODE
& (Join-Path $PSScriptRoot 'grant-graph-permission.ps1')
if ($LASTEXITCODE -ne 0) {
    [Console]::Error.WriteLine('warning: a Microsoft Graph permission is not granted yet (see above); the deployment goes on.')
}
exit $status
