# azd preprovision hook (azure.yaml): bring back the vaults an earlier `azd down` of this environment
# left soft-deleted, so that `azd up` after `azd down` works. The PowerShell twin of
# recover-deleted-vaults.sh (see it for the why): the deleted vaults tagged azd-env-name=<this
# environment> go to ROTATION_RECOVER_VAULT_NAMES, and the deployment recovers those it creates.
$ErrorActionPreference = 'Continue'  # native commands report through $LASTEXITCODE, checked after each
$PSNativeCommandArgumentPassing = 'Standard'

$envName = $env:AZURE_ENV_NAME
if (-not $envName) {
    [Console]::Error.WriteLine('error: AZURE_ENV_NAME is not set: run this through azd')
    exit 1
}

# Filtered here rather than in a --query: a JMESPath key with a hyphen needs double quotes, which do
# not survive every PowerShell and az.cmd combination.
$json = az keyvault list-deleted --resource-type vault --output json
if ($LASTEXITCODE -ne 0) {
    Write-Warning "could not list soft-deleted vaults; a vault of this environment deleted by azd down will fail to be created again (docs/deploy.md, 'After azd down')."
    azd env set ROTATION_RECOVER_VAULT_NAMES '[]'
    exit 0
}
$names = @(($json | Out-String | ConvertFrom-Json) |
        Where-Object { $_.properties.tags.'azd-env-name' -eq $envName } |
        ForEach-Object { $_.name })
azd env set ROTATION_RECOVER_VAULT_NAMES (ConvertTo-Json -InputObject $names -Compress)
if ($names.Count -gt 0) {
    Write-Host "Key Vault: recovering the soft-deleted vault(s) of environment $envName with their secrets: $($names -join ' ')"
    Write-Host "  (purge protection keeps a deleted vault's name taken for 90 days; see docs/deploy.md, 'After azd down')."
}
