// Everything the rotator needs on one vault, deployed into the vault's own resource group:
// - Key Vault Secrets Officer for the rotator identity, scoped to this vault only;
// - an Event Grid system topic on the vault and, once the function exists, a subscription that sends
//   exactly SecretNearExpiry and SecretExpired to on_key_vault_event, dead-lettering to blob storage.

@description('Name of an existing vault in this resource group.')
param vaultName string

@description('Principal (object) id of the rotator identity.')
param rotatorPrincipalId string

@description('Function app that handles the events.')
param functionAppName string

@description('Resource group of the function app.')
param functionAppResourceGroupName string

@description('Resource id of the user-assigned identity Event Grid uses to write dead letters.')
param eventGridIdentityId string

@description('Resource id of the storage account that receives dead letters.')
param deadLetterStorageAccountId string

@description('Blob container that receives dead letters.')
param deadLetterContainerName string

@description('Create the event subscription. Event Grid validates that the function exists, so this stays false until the code is deployed.')
param eventSubscriptionsEnabled bool = false

@description('Delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes Event Grid keeps retrying one event.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

@description('Tags for the system topic.')
param tags object = {}

var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
  scope: resourceGroup(functionAppResourceGroupName)
}

// Scoped to the vault: the rotator can read and write secrets here and nowhere else.
resource rotatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, rotatorPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: rotatorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault allows one system topic per vault; a vault that already has one must reuse it (see docs/deploy.md).
resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'evgt-${vaultName}'
  location: vault.location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${eventGridIdentityId}': {}
    }
  }
  properties: {
    source: vault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

// SecretNewVersionCreated is deliberately absent: the rotator's own writes fire it, and reacting would loop.
resource secretExpirySubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (eventSubscriptionsEnabled) {
  parent: systemTopic
  name: 'rotator-secret-expiry'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/on_key_vault_event'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: eventGridIdentityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output vaultId string = vault.id
output vaultUri string = vault.properties.vaultUri
output systemTopicName string = systemTopic.name
