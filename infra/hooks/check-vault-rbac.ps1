# Checks that every managed vault authorizes data-plane calls with Azure RBAC (enableRbacAuthorization).
# The PowerShell twin of check-vault-rbac.sh: on a vault that still uses access policies the rotator's
# Key Vault Secrets Officer role grants nothing and every rotation would fail with a 403, so this
# stops `azd up` with what to do. Run by postprovision.ps1; ROTATION_VAULT_IDS is an azd output.
$ErrorActionPreference = 'Continue'  # native commands report through $LASTEXITCODE, checked after each
$PSNativeCommandArgumentPassing = 'Standard'

if (-not $env:ROTATION_VAULT_IDS) {
    [Console]::Error.WriteLine('error: ROTATION_VAULT_IDS is not set: run this through azd after `azd provision`')
    exit 1
}

$errors = New-TemporaryFile
$status = 0
foreach ($id in ($env:ROTATION_VAULT_IDS -split ',' | Where-Object { $_ })) {
    $name = $id.Split('/')[-1]
    $group = if ($id -match '/resourceGroups/([^/]+)/') { $Matches[1] } else { '?' }
    $rbac = az resource show --ids $id --query properties.enableRbacAuthorization --output tsv 2> $errors
    if ($LASTEXITCODE -ne 0) {
        [Console]::Error.WriteLine("error: could not read vault $name (resource group ${group}): $(Get-Content -Raw $errors)")
        $status = 1
        continue
    }
    if ("$rbac".Trim() -eq 'true') {
        Write-Host "Key Vault: $name authorizes with Azure RBAC."
        continue
    }
    $status = 1
    [Console]::Error.WriteLine(@"
error: vault $name (resource group $group) authorizes with access policies, not Azure RBAC
  (enableRbacAuthorization is not true), so the rotator's Key Vault Secrets Officer role grants nothing
  there and every rotation would fail with a 403. Either switch the vault to RBAC - first give each
  identity that reads it through an access policy an equivalent role (e.g. Key Vault Secrets User on
  the vault), because the policies stop counting at once:

    az keyvault update --name $name --resource-group $group --enable-rbac-authorization true

  or take it out of ROTATION_EXISTING_VAULTS. Then run azd up again.
"@)
}
Remove-Item -Path $errors -ErrorAction SilentlyContinue
exit $status
