// Storage for the Functions host (keys, timers, leases), the deployment package, the rotation queues,
// the per-secret lease blobs and Event Grid's dead letters. Reached by Entra ID only: shared keys are off,
// so no connection string with an AccountKey exists anywhere.

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Region of the account.')
param location string

@description('Tags for every resource.')
param tags object = {}

@description('Blob container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Blob container where Event Grid writes events it could not deliver.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Principal (object) id of the rotator user-assigned identity.')
param rotatorPrincipalId string

@description('Principal (object) id of the identity Event Grid uses to write dead letters.')
param eventGridPrincipalId string

// Built-in role definition ids (stable across tenants).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches storage over its public endpoint; access is Entra ID only (shared keys off)
    // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35; every request needs an Entra ID token with a data role
    // checkov:skip=CKV_AZURE_206: only rebuildable state (host leases, queue messages, locks, package) lives here; LRS is available in every Flex region
    // checkov:skip=CKV_AZURE_43: the name is computed from a uniqueString token, so checkov cannot evaluate it
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The queue worker holds a blob lease on vault/secret here while it reconciles.
resource locksContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'rotation-locks'
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource requestsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'rotation-requests'
}

// The host moves a message here after maxDequeueCount failures; a function logs RotationPoisoned for it.
resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'rotation-requests-poison'
}

// The account is dedicated to the rotator, so account scope grants nothing beyond the rotator's own data.
// Blob Data Owner: host keys and timers, the deployment package and the lease blobs.
resource rotatorBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, rotatorPrincipalId, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: rotatorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Queue Data Contributor: enqueue, read and delete rotation requests and poison messages.
resource rotatorQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, rotatorPrincipalId, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: rotatorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Table Data Contributor: the Functions host records its diagnostic events in a table of AzureWebJobsStorage.
resource rotatorTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, rotatorPrincipalId, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: rotatorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Event Grid writes dead letters with its own identity, limited to the dead-letter container.
resource eventGridDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, eventGridPrincipalId, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: eventGridPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output deploymentContainerName string = deploymentContainer.name
output deadLetterContainerName string = deadLetterContainer.name
