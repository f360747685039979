# Grants the rotator identity its Microsoft Graph application permissions: Application.ReadWrite.OwnedBy
# (it may then add and remove passwords only on the app registrations that list it as an owner, never
# on the other apps of the tenant) and, only if asked, AuditLog.Read.All (the sign-in activity report,
# the evidence for ROTATION_RETIREMENT_EVIDENCE; Entra ID P1/P2). The PowerShell twin of
# grant-graph-permission.sh (same steps, same exit status); see that file for why this is a step of
# its own, each grant off unless ROTATION_GRANT_GRAPH_PERMISSION=true / ROTATION_GRANT_AUDIT_LOG=true.
#
# Run by the postprovision hook (postprovision.ps1), or by an administrator (PowerShell 7.3 or later):
#   $env:ROTATOR_PRINCIPAL_ID = '<object id>'; $env:ROTATION_GRANT_GRAPH_PERMISSION = 'true'
#   pwsh infra/hooks/grant-graph-permission.ps1
# Exit status: 0 granted (or already, or not asked), 2 refused for lack of an Entra role, 1 otherwise.
$ErrorActionPreference = 'Continue'  # native commands report through $LASTEXITCODE, checked after each
$PSNativeCommandArgumentPassing = 'Standard'

$microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'
# Application permission ids, from the Microsoft Graph permissions reference.
$ownedByRoleId = '18a4783c-866b-4cc7-a460-3d5e5662c884'   # Application.ReadWrite.OwnedBy
$auditLogRoleId = 'b0afded3-3588-46d8-8b3d-9842eff778da'  # AuditLog.Read.All
# Seconds between attempts while a new identity replicates (about six minutes in all).
$retryDelays = @(15, 30, 45, 60, 60, 60, 60, 60)

$principal = $env:ROTATOR_PRINCIPAL_ID
if (-not $principal) {
    [Console]::Error.WriteLine('error: ROTATOR_PRINCIPAL_ID is not set (the object id of the rotator identity: azd env get-values)')
    exit 1
}

# Microsoft Graph of the cloud az is signed in to (https://graph.microsoft.com/ in the public cloud).
$graph = az cloud show --query endpoints.microsoftGraphResourceId --output tsv 2>$null
if ($LASTEXITCODE -ne 0 -or -not $graph) { $graph = 'https://graph.microsoft.com' }
$graph = "$graph".Trim().TrimEnd('/')
$assignments = "$graph/v1.0/servicePrincipals/$principal/appRoleAssignments"

function Write-AdminCommand([string] $roleId, [string] $switchName, [string] $untilThen) {
    $text = @"
An administrator who may grant app roles (Privileged Role Administrator or Global Administrator) runs, once:

  `$graphSp = az ad sp show --id $microsoftGraphAppId --query id --output tsv
  @{ principalId = '$principal'; resourceId = `$graphSp; appRoleId = '$roleId' } | ConvertTo-Json | Set-Content grant.json
  az rest --method POST --url "$assignments" --headers Content-Type=application/json --body '@grant.json'

or, from a clone of this repository (it retries while Entra replicates a new identity):

  `$env:ROTATOR_PRINCIPAL_ID = '$principal'; `$env:$switchName = 'true'; pwsh infra/hooks/grant-graph-permission.ps1

$untilThen
"@
    Write-Host $text
}

# True when the grant exists; false when it does not or cannot be read (the identity may not have replicated).
function Test-Granted([string] $graphSp, [string] $roleId) {
    $json = az rest --method GET --url $assignments --output json 2>$null
    if ($LASTEXITCODE -ne 0 -or -not $json) { return $false }
    $value = ($json | Out-String | ConvertFrom-Json).value
    return @($value | Where-Object { $_.appRoleId -eq $roleId -and $_.resourceId -eq $graphSp }).Count -gt 0
}

$graphSp = az ad sp show --id $microsoftGraphAppId --query id --output tsv 2>$null
if ($LASTEXITCODE -ne 0) { $graphSp = '' }
$graphSp = "$graphSp".Trim()
# Set when Graph refuses a grant for lack of an Entra role: a second grant would be refused as well.
$script:refused = $false

# One app role, granted only when the environment variable $switchName is 'true'. $untilThen says what a
# missing grant costs; $notAsked, when set, replaces the administrator's commands while the switch is
# off (for an optional permission). Returns 0 (held, granted or not asked), 2 (refused) or 1.
function Grant-Role([string] $roleName, [string] $roleId, [string] $switchName, [string] $untilThen, [string] $notAsked) {
    if ([Environment]::GetEnvironmentVariable($switchName) -ne 'true') {
        if ($graphSp -and (Test-Granted $graphSp $roleId)) {
            Write-Host "Microsoft Graph: the rotator identity holds $roleName."
            return 0
        }
        Write-Host "Microsoft Graph: $roleName is not granted by this deployment ($switchName is not true)."
        if ($notAsked) { Write-Host $notAsked } else { Write-AdminCommand $roleId $switchName $untilThen }
        return 0
    }
    if (-not $graphSp) {
        [Console]::Error.WriteLine("error: could not read Microsoft Graph's service principal (az ad sp show --id $microsoftGraphAppId): is az signed in to the right tenant?")
        return 1
    }
    if ($script:refused -and -not (Test-Granted $graphSp $roleId)) {
        [Console]::Error.WriteLine("Microsoft Graph: $roleName is not tried either (the grant above was refused).")
        Write-AdminCommand $roleId $switchName $untilThen
        return 2
    }

    # A body file: JSON in a native argument loses its quotes on some PowerShell and az.cmd combinations.
    $bodyFile = New-TemporaryFile
    try {
        @{ principalId = $principal; resourceId = $graphSp; appRoleId = $roleId } |
            ConvertTo-Json | Set-Content -Path $bodyFile -Encoding utf8NoBOM
        $output = ''
        foreach ($delay in @($retryDelays + 'last')) {
            if (Test-Granted $graphSp $roleId) {
                Write-Host "Microsoft Graph: the rotator identity holds $roleName."
                return 0
            }
            $output = az rest --method POST --url $assignments --headers Content-Type=application/json `
                --body "@$bodyFile" --output none 2>&1 | Out-String
            if ($LASTEXITCODE -eq 0) {
                Write-Host "Microsoft Graph: granted $roleName to the rotator identity ($principal)."
                return 0
            }
            if ($output -match 'Authorization_RequestDenied|Insufficient privileges|Forbidden') {
                $script:refused = $true
                [Console]::Error.WriteLine("Microsoft Graph: you may not grant app roles in this tenant, so the rotator identity does not hold $roleName yet.")
                Write-AdminCommand $roleId $switchName $untilThen
                return 2
            }
            if ($output -match 'already exists') {
                Write-Host "Microsoft Graph: the rotator identity holds $roleName."
                return 0
            }
            if ($delay -eq 'last') { break }
            # Typically the new identity is not known to every Entra replica yet: waiting fixes it.
            $first = ($output -split "`n")[0].Trim()
            [Console]::Error.WriteLine("Microsoft Graph: not granted yet ($first); retrying in $delay s.")
            Start-Sleep -Seconds $delay
        }
        [Console]::Error.WriteLine("error: could not grant $roleName to ${principal}:")
        [Console]::Error.WriteLine($output)
        Write-AdminCommand $roleId $switchName $untilThen
        return 1
    }
    finally {
        Remove-Item -Path $bodyFile -ErrorAction SilentlyContinue
    }
}

$ownedBy = Grant-Role 'Application.ReadWrite.OwnedBy' $ownedByRoleId 'ROTATION_GRANT_GRAPH_PERMISSION' `
    'Until then every rotation fails with a Graph 403 (RotationFailed, and its alert).' ''
$auditLog = Grant-Role 'AuditLog.Read.All' $auditLogRoleId 'ROTATION_GRANT_AUDIT_LOG' `
    'Until then retirement waits out the grace period only, without sign-in evidence (EvidenceUnavailable); the report also needs Entra ID P1/P2.' `
    "Retirement waits out the grace period only, without sign-in evidence. To retire on evidence (Entra ID P1/P2 tenant): `$env:ROTATOR_PRINCIPAL_ID = '$principal'; `$env:ROTATION_GRANT_AUDIT_LOG = 'true'; pwsh infra/hooks/grant-graph-permission.ps1, by an administrator."

# The worst outcome decides: an error, then a refusal, then success.
foreach ($status in @(1, 2)) {
    if ($ownedBy -eq $status -or $auditLog -eq $status) { exit $status }
}
exit 0
