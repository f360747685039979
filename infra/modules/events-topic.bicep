// Lifecycle events for subscribers (ROTATION_EVENTS_TOPIC): an Event Grid custom topic that the
// rotator publishes RotationCompleted, RetirementHeld, CredentialRetired, RotationFailed, NotBound and
// CredentialExpiring to as CloudEvents 1.0 (rotation/adapters/eventgrid.py), and the one role that
// lets it: EventGrid Data Sender for the rotator identity, scoped to this topic only.
// Subscriptions are the subscribers' own (README, "Subscribing to lifecycle events"): mail, chat or a
// function of theirs, filtered on the Rotator.* event types.

@description('Topic name (3-50 letters, digits and hyphens; its endpoint is https://<name>.<region>-1.eventgrid.azure.net/api/events).')
@minLength(3)
@maxLength(50)
param name string

@description('Region of the topic.')
param location string

@description('Tags for the topic.')
param tags object = {}

@description('Principal (object) id of the rotator identity, which publishes the events.')
param rotatorPrincipalId string

@description('Resource id of the user-assigned identity Event Grid uses to write dead letters (the one the vaults\' system topics carry).')
param eventGridIdentityId string

// EventGrid Data Sender (built-in role): send events to a topic, nothing else: no reading of its
// keys, its subscriptions or other topics.
var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  // The identity that may write only the dead-letter container: a subscriber's subscription can
  // dead-letter what it could not deliver there (deadLetterWithResourceIdentity), without a storage key.
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${eventGridIdentityId}': {}
    }
  }
  properties: {
    // checkov:skip=CKV_AZURE_193: the rotator publishes from a Flex Consumption app without VNet integration, like its other endpoints (docs/deploy.md); only Entra tokens with EventGrid Data Sender on this topic may post
    // The publisher sends CloudEvents 1.0 (azure-eventgrid's CloudEvent); subscriptions then deliver
    // them in the same schema (Event Grid cannot turn CloudEvents input into its own schema).
    inputSchema: 'CloudEventSchemaV1_0'
    // No access keys or SAS tokens: a publisher needs an Entra token whose principal holds EventGrid
    // Data Sender here, so there is no shared secret to store, leak or rotate.
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    minimumTlsVersionAllowed: '1.2'
  }
}

resource rotatorDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, rotatorPrincipalId, eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: rotatorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = topic.id
output name string = topic.name
// What ROTATION_EVENTS_TOPIC holds: the publisher posts here.
output endpoint string = topic.properties.endpoint
