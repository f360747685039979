# azd postdeploy hook (azure.yaml): subscribe on_key_vault_event to every managed vault's system topic.
# The PowerShell twin of create-event-subscriptions.sh (see it for the why): one idempotent ARM PUT per
# vault with the definition in event-subscription.json (event-subscription-without-dead-letter.json on
# a topic the vault already had), retried while the host indexes the new function; nothing else is
# provisioned. Run it alone with `azd hooks run postdeploy`.
$ErrorActionPreference = 'Continue'  # native commands report through $LASTEXITCODE, checked after each
$PSNativeCommandArgumentPassing = 'Standard'

$apiVersion = '2022-06-15'
$attempts = 5
$retrySeconds = 30

$required = 'AZURE_SUBSCRIPTION_ID', 'ROTATION_EVENT_TOPICS', 'ROTATION_EVENT_SUBSCRIPTION_NAME',
    'ROTATION_EVENT_ENDPOINT_ID', 'ROTATION_EVENTGRID_IDENTITY_ID', 'ROTATION_DEAD_LETTER_STORAGE_ID',
    'ROTATION_DEAD_LETTER_CONTAINER'
foreach ($name in $required) {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        [Console]::Error.WriteLine("error: $name is not set: run this through azd after ``azd provision`` (azd hooks run postdeploy)")
        exit 1
    }
}

$work = Join-Path ([IO.Path]::GetTempPath()) ([Guid]::NewGuid().ToString())
New-Item -ItemType Directory -Path $work | Out-Null

function Write-Body([string] $template, [string] $target) {
    $text = Get-Content -Raw -Path (Join-Path $PSScriptRoot $template)
    $text = $text.Replace('__ENDPOINT_ID__', $env:ROTATION_EVENT_ENDPOINT_ID)
    $text = $text.Replace('__EVENTGRID_IDENTITY_ID__', $env:ROTATION_EVENTGRID_IDENTITY_ID)
    $text = $text.Replace('__DEAD_LETTER_STORAGE_ID__', $env:ROTATION_DEAD_LETTER_STORAGE_ID)
    $text = $text.Replace('__DEAD_LETTER_CONTAINER__', $env:ROTATION_DEAD_LETTER_CONTAINER)
    Set-Content -Path $target -Value $text -Encoding utf8NoBOM -NoNewline
}

# The subscription's provisioningState once Event Grid has finished with it (polled for up to 2 minutes).
function Get-SettledState([string] $url) {
    $state = 'Unknown'
    for ($poll = 0; $poll -lt 24; $poll++) {
        $state = az rest --method GET --url $url --query properties.provisioningState --output tsv 2>$null
        if ($LASTEXITCODE -ne 0) { $state = 'Unknown' }
        $state = "$state".Trim()
        if ($state -notin @('Creating', 'Updating')) { return $state }
        Start-Sleep -Seconds 5
    }
    return $state
}

function Add-Subscription([string] $group, [string] $topic, [string] $body) {
    $url = "/subscriptions/$env:AZURE_SUBSCRIPTION_ID/resourceGroups/$group/providers/Microsoft.EventGrid/systemTopics/$topic/eventSubscriptions/$($env:ROTATION_EVENT_SUBSCRIPTION_NAME)?api-version=$apiVersion"
    for ($attempt = 1; $attempt -le $attempts; $attempt++) {
        $output = az rest --method PUT --url $url --body "@$body" --output none 2>&1 | Out-String
        if ($LASTEXITCODE -eq 0) {
            $state = Get-SettledState $url
            if ($state -eq 'Succeeded') { return $true }
            [Console]::Error.WriteLine("  provisioningState: $state")
        }
        else {
            [Console]::Error.WriteLine("  $($output.Trim())")
        }
        if ($attempt -lt $attempts) {
            # The host indexes the functions shortly after the package lands; Event Grid then finds the endpoint.
            [Console]::Error.WriteLine("  retrying in $retrySeconds s (attempt $($attempt + 1) of $attempts)")
            Start-Sleep -Seconds $retrySeconds
        }
    }
    return $false
}

# A topic the deployer named must be a Key Vault system topic, or the vault's events never arrive.
function Test-KeyVaultTopic([string] $group, [string] $topic) {
    $kind = az rest --method GET `
        --url "/subscriptions/$env:AZURE_SUBSCRIPTION_ID/resourceGroups/$group/providers/Microsoft.EventGrid/systemTopics/$($topic)?api-version=$apiVersion" `
        --query properties.topicType --output tsv 2>$null
    return $LASTEXITCODE -eq 0 -and "$kind".Trim() -eq 'Microsoft.KeyVault.vaults'
}

try {
    Write-Body 'event-subscription.json' (Join-Path $work 'with-dead-letter.json')
    Write-Body 'event-subscription-without-dead-letter.json' (Join-Path $work 'without-dead-letter.json')
    $failed = @()
    foreach ($entry in ($env:ROTATION_EVENT_TOPICS -split ',' | Where-Object { $_ })) {
        $group, $rest = $entry -split '/', 2
        $topic, $origin = $rest -split ':', 2
        $body = Join-Path $work 'with-dead-letter.json'
        $note = ''
        if ($origin -eq 'reused') {
            $body = Join-Path $work 'without-dead-letter.json'
            $note = " (the vault's own topic: no dead-lettering)"
            if (-not (Test-KeyVaultTopic $group $topic)) {
                [Console]::Error.WriteLine("error: $group/$topic is not a Key Vault system topic this account can read; check systemTopicName and systemTopicResourceGroupName in ROTATION_EXISTING_VAULTS")
                $failed += "$group/$topic"
                continue
            }
        }
        Write-Host "Event Grid: $group/$topic -> on_key_vault_event, subscription $($env:ROTATION_EVENT_SUBSCRIPTION_NAME)$note"
        if (-not (Add-Subscription $group $topic $body)) { $failed += "$group/$topic" }
    }
    if ($failed.Count -gt 0) {
        [Console]::Error.WriteLine("error: on_key_vault_event is not subscribed to: $($failed -join ' ')")
        [Console]::Error.WriteLine("Check that the function is listed (az functionapp function list -g `"$env:AZURE_RESOURCE_GROUP`" -n `"$env:FUNCTION_APP_NAME`" --query `"[].name`"),")
        [Console]::Error.WriteLine('then run this step alone: azd hooks run postdeploy. Until then the hourly sweep still rotates every secret;')
        [Console]::Error.WriteLine('only the early start on SecretNearExpiry is missing.')
        exit 1
    }
    Write-Host 'Event Grid subscriptions are in place.'
}
finally {
    Remove-Item -Recurse -Force -Path $work -ErrorAction SilentlyContinue
}
