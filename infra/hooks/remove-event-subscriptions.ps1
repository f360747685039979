# azd postdown hook (azure.yaml): remove this environment's Event Grid subscriptions from the system
# topics that `azd down` did not delete (those of vaults you brought, in their own resource groups).
# The PowerShell twin of remove-event-subscriptions.sh (see it for the why): only the subscription
# named for this environment goes; topics, vaults, role assignments and other subscriptions stay.
$ErrorActionPreference = 'Continue'  # native commands report through $LASTEXITCODE, checked after each
$PSNativeCommandArgumentPassing = 'Standard'

$name = $env:ROTATION_EVENT_SUBSCRIPTION_NAME
if (-not $env:ROTATION_EVENT_TOPICS -or -not $name -or -not $env:AZURE_SUBSCRIPTION_ID) {
    Write-Host 'No Event Grid subscriptions recorded for this environment; nothing to remove.'
    exit 0
}

foreach ($entry in ($env:ROTATION_EVENT_TOPICS -split ',' | Where-Object { $_ })) {
    $group, $rest = $entry -split '/', 2
    $topic = ($rest -split ':', 2)[0]
    if ($group -eq $env:AZURE_RESOURCE_GROUP) { continue }  # deleted with the resource group
    $url = "/subscriptions/$env:AZURE_SUBSCRIPTION_ID/resourceGroups/$group/providers/Microsoft.EventGrid/systemTopics/$topic/eventSubscriptions/$($name)?api-version=2022-06-15"
    $output = az rest --method DELETE --url $url --output none 2>&1 | Out-String
    if ($LASTEXITCODE -eq 0) {
        Write-Host "Event Grid: removed subscription $name from $group/$topic."
    }
    elseif ($output -match 'notfound|not found') {
        Write-Host "Event Grid: $group/$topic has no subscription $name (or no longer exists)."
    }
    else {
        # azd down itself succeeded: say what is left and how to remove it, without failing the command.
        [Console]::Error.WriteLine("  $($output.Trim())")
        Write-Warning "could not remove subscription $name from $group/$topic; remove it with:"
        Write-Warning "  az eventgrid system-topic event-subscription delete -g $group --system-topic-name $topic -n $name --yes"
    }
}
