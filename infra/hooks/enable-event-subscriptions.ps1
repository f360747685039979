# azd postdeploy hook (see azure.yaml). Event Grid validates an AzureFunction endpoint when the
# subscription is created, so the subscriptions to on_key_vault_event can only be provisioned after the
# code is deployed. The first time, turn them on and provision again; later deploys change nothing.
$ErrorActionPreference = 'Stop'

if ($env:ROTATION_EVENT_SUBSCRIPTIONS -eq 'true') {
    Write-Host 'Event Grid subscriptions to on_key_vault_event are already provisioned.'
    exit 0
}

Write-Host 'Function code deployed: provisioning the Event Grid subscriptions to on_key_vault_event.'
azd env set ROTATION_EVENT_SUBSCRIPTIONS true
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

for ($attempt = 1; $attempt -le 3; $attempt++) {
    azd provision --no-prompt
    if ($LASTEXITCODE -eq 0) { exit 0 }
    if ($attempt -lt 3) {
        # The host indexes the functions shortly after the package lands; Event Grid then finds the endpoint.
        Write-Warning "Retrying in 60 seconds (attempt $($attempt + 1) of 3)."
        Start-Sleep -Seconds 60
    }
}

azd env set ROTATION_EVENT_SUBSCRIPTIONS false
Write-Error ("Could not create the Event Grid subscriptions. Check that the function on_key_vault_event is listed " +
    "(az functionapp function list -g $env:AZURE_RESOURCE_GROUP -n $env:FUNCTION_APP_NAME), then run: " +
    "azd env set ROTATION_EVENT_SUBSCRIPTIONS true; azd provision")
exit 1
