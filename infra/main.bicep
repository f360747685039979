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

@description('Existing vaults to manage, in this subscription: [{"name": "kv-a", "resourceGroupName": "rg-a"}]. resourceGroupName defaults to the rotator resource group. A vault that already has an Event Grid system topic (Key Vault allows one per vault) names it: "systemTopicName" (and "systemTopicResourceGroupName" when it is not in the vault\'s group); the rotator then subscribes to that topic and creates none.')
param existingVaults array = []

@description('Vaults of createVaultNames (or the default kv-<token>) that an earlier `azd down` of this environment left soft-deleted: recovered, with their secrets, instead of created. The preprovision hook fills it (ROTATION_RECOVER_VAULT_NAMES); purge protection keeps a deleted vault\'s name taken for 90 days, so creating it anew would fail.')
param recoverVaultNames array = []

@description('Most instances per function scale group (Flex Consumption allows 1-1000). Small on purpose: the rotator calls Graph and Key Vault, and a sweep that finds many secrets due should queue them, not fan out (docs/deploy.md).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 2

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

@description('ROTATION_EXPIRY_SCHEDULE: NCRONTAB of the daily expiry notices timer (must fire once per UTC day).')
param expirySchedule string = '0 0 6 * * *'

@description('ROTATION_EXPIRY_WINDOWS_DAYS: days before expiry at which every readable credential gets a CredentialExpiryNotice, comma-separated.')
@minLength(1)
param expiryWindowsDays string = '30,14,7,1,0'

@description('Create the Event Grid topic for lifecycle events (CloudEvents 1.0, Entra-only publishing) and point ROTATION_EVENTS_TOPIC at it. False: no topic, nothing is published.')
param rotationEventsTopic bool = true

@description('ROTATION_OPERATOR_ROLE: app role an operator needs for the HTTP rotate endpoint.')
param operatorRole string = 'Rotation.Operator'

@description('ROTATION_READER_ROLE: app role a caller needs for the HTTP read routes (status, list, inventory).')
param readerRole string = 'Rotation.Reader'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var rotatorResourceGroupName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var functionAppName = 'func-rotator-${resourceToken}'
var deploymentContainerName = 'deployment-package'
var deadLetterContainerName = 'eventgrid-deadletter'
// The system topics (evgt-<vault>-<token>) and the event subscription carry the token as well: they can
// live outside this environment's resource group, and a second environment that brings the same vault
// must fail loudly (Key Vault allows one system topic per vault) instead of taking over the first
// one's topic and subscription by name.
var eventSubscriptionName = 'rotator-secret-expiry-${resourceToken}'
// The lifecycle events topic (its endpoint host is <name>.<region>-1.eventgrid.azure.net, so it is unique per region).
var eventsTopicName = 'evgt-rotator-events-${resourceToken}'

// The vaults the rotator manages: the ones created here plus the ones passed in.
var vaultsToCreate = (empty(createVaultNames) && empty(existingVaults)) ? [
  'kv-${resourceToken}'
] : createVaultNames
var createdVaultRefs = [for name in vaultsToCreate: {
  name: name
  resourceGroupName: rotatorResourceGroupName
  systemTopicName: 'evgt-${name}-${resourceToken}'
  systemTopicResourceGroupName: rotatorResourceGroupName
  reuseSystemTopic: false
}]
var existingVaultRefs = [for vault in existingVaults: {
  name: vault.name
  resourceGroupName: (vault.?resourceGroupName) ?? rotatorResourceGroupName
  // Key Vault allows one system topic per vault: a vault that has one keeps it, and the rotator
  // subscribes to it (the deployer names it) instead of failing on a second one.
  systemTopicName: (vault.?systemTopicName) ?? 'evgt-${vault.name}-${resourceToken}'
  systemTopicResourceGroupName: empty((vault.?systemTopicName) ?? '') ? ((vault.?resourceGroupName) ?? rotatorResourceGroupName) : ((vault.?systemTopicResourceGroupName) ?? ((vault.?resourceGroupName) ?? rotatorResourceGroupName))
  reuseSystemTopic: !empty((vault.?systemTopicName) ?? '')
}]
var managedVaults = concat(createdVaultRefs, existingVaultRefs)

// ROTATION_VAULTS: name=https://name.vault.azure.net entries, with the DNS suffix of this cloud.
var vaultEntries = [for vault in managedVaults: '${vault.name}=https://${vault.name}${environment().suffixes.keyvaultDns}']
var rotationVaults = join(vaultEntries, ',')

// For the hooks (azure.yaml): every managed vault's resource id (the post-provision RBAC check) and
// its system topic as <group>/<topic>:created|reused (the post-deploy step subscribes to each).
var managedVaultIds = [for vault in managedVaults: resourceId(subscription().subscriptionId, vault.resourceGroupName, 'Microsoft.KeyVault/vaults', vault.name)]
var eventTopics = [for vault in managedVaults: '${vault.systemTopicResourceGroupName}/${vault.systemTopicName}:${vault.reuseSystemTopic ? 'reused' : 'created'}']

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

// Lifecycle events for subscribers: the topic the rotator publishes to, and its EventGrid Data Sender role.
module eventsTopic 'modules/events-topic.bicep' = if (rotationEventsTopic) {
  name: 'events-topic'
  scope: rg
  params: {
    name: eventsTopicName
    location: location
    tags: tags
    rotatorPrincipalId: identities.outputs.rotatorPrincipalId
    eventGridIdentityId: identities.outputs.eventGridId
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
    expirySchedule: expirySchedule
    expiryWindowsDays: expiryWindowsDays
    operatorRole: operatorRole
    readerRole: readerRole
    expiryAlertDays: expiryAlertDays
    maximumInstanceCount: maximumInstanceCount
    operatorApiClientId: empty(operatorApiClientId) ? (operatorApi.?outputs.clientId ?? '') : operatorApiClientId
    operatorApiAudience: empty(operatorApiClientId) ? (operatorApi.?outputs.audience ?? '') : ''
    eventsTopic: rotationEventsTopic ? (eventsTopic.?outputs.endpoint ?? '') : ''
  }
}

module createdVaults 'modules/key-vault.bicep' = [for name in vaultsToCreate: {
  name: 'key-vault-${name}'
  scope: rg
  params: {
    name: name
    location: location
    tags: tags
    createMode: contains(recoverVaultNames, name) ? 'recover' : 'default'
  }
}]

module vaultRotation 'modules/vault-rotation.bicep' = [for vault in managedVaults: {
  name: 'vault-rotation-${vault.name}'
  scope: resourceGroup(vault.resourceGroupName)
  params: {
    vaultName: vault.name
    rotatorPrincipalId: identities.outputs.rotatorPrincipalId
    systemTopicName: vault.systemTopicName
    createSystemTopic: !vault.reuseSystemTopic
    eventGridIdentityId: identities.outputs.eventGridId
    tags: tags
  }
  dependsOn: [
    createdVaults
  ]
}]

// Not here on purpose: the Event Grid subscriptions (Event Grid validates the endpoint, which exists
// only after `azd deploy`: infra/hooks/create-event-subscriptions.*, postdeploy) and the Microsoft
// Graph app role (a deployer may lack the Entra role, and a new identity takes a while to replicate:
// infra/hooks/grant-graph-permission.*, postprovision, off unless ROTATION_GRANT_GRAPH_PERMISSION=true).

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
// Read by the hooks in infra/hooks (azure.yaml).
output ROTATION_VAULT_IDS string = join(managedVaultIds, ',')
output ROTATION_EVENT_TOPICS string = join(eventTopics, ',')
output ROTATION_EVENT_SUBSCRIPTION_NAME string = eventSubscriptionName
output ROTATION_EVENT_ENDPOINT_ID string = '${functionApp.outputs.id}/functions/on_key_vault_event'
output ROTATION_EVENTGRID_IDENTITY_ID string = identities.outputs.eventGridId
output ROTATION_DEAD_LETTER_STORAGE_ID string = storage.outputs.id
output ROTATION_DEAD_LETTER_CONTAINER string = storage.outputs.deadLetterContainerName
// The lifecycle events topic (empty when rotationEventsTopic is false): subscribers pass its id as
// --source-resource-id; the endpoint is what ROTATION_EVENTS_TOPIC holds.
output ROTATION_EVENTS_TOPIC string = rotationEventsTopic ? (eventsTopic.?outputs.endpoint ?? '') : ''
output ROTATION_EVENTS_TOPIC_NAME string = rotationEventsTopic ? (eventsTopic.?outputs.name ?? '') : ''
output ROTATION_EVENTS_TOPIC_ID string = rotationEventsTopic ? (eventsTopic.?outputs.id ?? '') : ''
