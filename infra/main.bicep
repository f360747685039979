// Entry point for `azd up`: the Entra ID client-secret rotator with least privilege.
// See docs/deploy.md for the steps around it (app ownership, tagging secrets, manual rolls).
targetScope = 'subscription'

@description('azd environment name; part of every resource name and the azd-env-name tag.')
@minLength(1)
@maxLength(64)
param environmentName string

@description('Region of the rotator and of the vaults it creates. Existing vaults keep theirs.')
@minLength(1)
param location string

@description('Resource group to create for the rotator (default rg-<environmentName>).')
param resourceGroupName string = ''

@description('Key Vaults to create in the rotator resource group and manage, e.g. ["kv-payments-prod"]. When this and existingVaults are both empty, one vault named kv-<token> is created.')
param createVaultNames array = []

@description('Existing vaults to manage, in this subscription: [{"name": "kv-a", "resourceGroupName": "rg-a"}]. resourceGroupName defaults to the rotator resource group.')
param existingVaults array = []

@description('Create the Event Grid subscriptions to on_key_vault_event. Event Grid checks that the function exists, which is only true after `azd deploy`; the postdeploy hook sets this and provisions again.')
param eventSubscriptionsEnabled bool = false

@description('Grant Microsoft Graph Application.ReadWrite.OwnedBy to the rotator identity in this deployment (needs a deployer who may grant app roles). Set false and follow docs/deploy.md to have an administrator grant it.')
param grantGraphPermission bool = true

@description('Client id of an existing app registration for the rotator API (with the Rotation.Operator and Rotation.Reader app roles). Empty: this deployment registers one, which needs a deployer allowed to register applications.')
param operatorApiClientId string = ''

@description('E-mail address that receives the rotation alerts.')
@minLength(3)
param alertEmail string

@description('ROTATION_EXPIRY_ALERT_DAYS: alert when a managed credential expires within this many days.')
@minValue(0)
@maxValue(365)
param expiryAlertDays int = 14

@description('ROTATION_VALIDITY_DAYS: lifetime of new credentials (default when a secret has no ValidityPeriodDays tag).')
@minValue(1)
@maxValue(730)
param validityDays int = 90

@description('ROTATION_ROTATE_BEFORE_DAYS: rotate when expiry is this close (default when a secret has no RotateBeforeDays tag); must be less than validityDays.')
@minValue(0)
@maxValue(365)
param rotateBeforeDays int = 30

@description('ROTATION_GRACE_HOURS: keep the old credential this long after the new one is proven.')
@minValue(0)
@maxValue(720)
param graceHours int = 24

@description('ROTATION_SCHEDULE: NCRONTAB of the sweep timer.')
param schedule string = '0 0 * * * *'

@description('ROTATION_OPERATOR_ROLE: app role an operator needs for the HTTP rotate endpoint.')
param operatorRole string = 'Rotation.Operator'

@description('ROTATION_READER_ROLE: app role a caller needs for the HTTP read routes (status, list, inventory).')
param readerRole string = 'Rotation.Reader'

@description('Event Grid delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes Event Grid keeps retrying one event.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var rotatorResourceGroupName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var functionAppName = 'func-rotator-${resourceToken}'
var deploymentContainerName = 'deployment-package'
var deadLetterContainerName = 'eventgrid-deadletter'

// The vaults the rotator manages: the ones created here plus the ones passed in.
var vaultsToCreate = (empty(createVaultNames) && empty(existingVaults)) ? [
  'kv-${resourceToken}'
] : createVaultNames
var createdVaultRefs = [for name in vaultsToCreate: {
  name: name
  resourceGroupName: rotatorResourceGroupName
}]
var existingVaultRefs = [for vault in existingVaults: {
  name: vault.name
  resourceGroupName: (vault.?resourceGroupName) ?? rotatorResourceGroupName
}]
var managedVaults = concat(createdVaultRefs, existingVaultRefs)

// ROTATION_VAULTS: name=https://name.vault.azure.net entries, with the DNS suffix of this cloud.
var vaultEntries = [for vault in managedVaults: '${vault.name}=https://${vault.name}${environment().suffixes.keyvaultDns}']
var rotationVaults = join(vaultEntries, ',')

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: rotatorResourceGroupName
  location: location
  tags: tags
}

module identities 'modules/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    resourceToken: resourceToken
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    rotatorPrincipalId: identities.outputs.rotatorPrincipalId
    eventGridPrincipalId: identities.outputs.eventGridPrincipalId
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    resourceToken: resourceToken
    location: location
    tags: tags
    rotatorPrincipalId: identities.outputs.rotatorPrincipalId
    alertEmail: alertEmail
    expiryAlertDays: expiryAlertDays
  }
}

// The API operators sign in to; App Service authentication on the function app accepts only its tokens.
module operatorApi 'modules/operator-api.bicep' = if (empty(operatorApiClientId)) {
  name: 'operator-api'
  scope: rg
  params: {
    uniqueName: 'rotator-api-${resourceToken}'
    displayName: 'Secret rotator API (${environmentName})'
    operatorRole: operatorRole
    readerRole: readerRole
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-rotator-${resourceToken}'
    location: location
    tags: tags
    identityId: identities.outputs.rotatorId
    identityClientId: identities.outputs.rotatorClientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    rotationVaults: rotationVaults
    validityDays: validityDays
    rotateBeforeDays: rotateBeforeDays
    graceHours: graceHours
    schedule: schedule
    operatorRole: operatorRole
    readerRole: readerRole
    expiryAlertDays: expiryAlertDays
    operatorApiClientId: empty(operatorApiClientId) ? (operatorApi.?outputs.clientId ?? '') : operatorApiClientId
    operatorApiAudience: empty(operatorApiClientId) ? (operatorApi.?outputs.audience ?? '') : ''
  }
}

module createdVaults 'modules/key-vault.bicep' = [for name in vaultsToCreate: {
  name: 'key-vault-${name}'
  scope: rg
  params: {
    name: name
    location: location
    tags: tags
  }
}]

module vaultRotation 'modules/vault-rotation.bicep' = [for vault in managedVaults: {
  name: 'vault-rotation-${vault.name}'
  scope: resourceGroup(vault.resourceGroupName)
  params: {
    vaultName: vault.name
    rotatorPrincipalId: identities.outputs.rotatorPrincipalId
    functionAppName: functionApp.outputs.name
    functionAppResourceGroupName: rg.name
    eventGridIdentityId: identities.outputs.eventGridId
    deadLetterStorageAccountId: storage.outputs.id
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    eventSubscriptionsEnabled: eventSubscriptionsEnabled
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    tags: tags
  }
  dependsOn: [
    createdVaults
  ]
}]

module graphPermission 'modules/graph-permission.bicep' = if (grantGraphPermission) {
  name: 'graph-permission'
  scope: rg
  params: {
    principalId: identities.outputs.rotatorPrincipalId
  }
}

// azd stores these in .azure/<env>/.env. None of them is a secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output ROTATOR_PRINCIPAL_ID string = identities.outputs.rotatorPrincipalId
output ROTATOR_CLIENT_ID string = identities.outputs.rotatorClientId
output ROTATION_VAULTS string = rotationVaults
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output OPERATOR_API_CLIENT_ID string = empty(operatorApiClientId) ? (operatorApi.?outputs.clientId ?? '') : operatorApiClientId
