// Two user-assigned identities, so each gets only its own permissions:
// - the rotator (the function app): storage data roles, Key Vault Secrets Officer per vault,
//   Monitoring Metrics Publisher, EventGrid Data Sender on the lifecycle events topic, and Microsoft
//   Graph Application.ReadWrite.OwnedBy (granted by its own step, infra/hooks/grant-graph-permission.*,
//   not by this deployment; the sign-in evidence permission too, only when asked);
// - Event Grid's dead-letter writer: Blob Data Contributor on the dead-letter container only (the
//   vaults' system topics and the lifecycle events topic carry it).

@description('Name token shared by the resources.')
param resourceToken string

@description('Region of the identities.')
param location string

@description('Tags for the identities.')
param tags object = {}

resource rotator 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-rotator-${resourceToken}'
  location: location
  tags: tags
}

resource eventGrid 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-eventgrid-${resourceToken}'
  location: location
  tags: tags
}

output rotatorId string = rotator.id
output rotatorName string = rotator.name
output rotatorPrincipalId string = rotator.properties.principalId
output rotatorClientId string = rotator.properties.clientId
output eventGridId string = eventGrid.id
output eventGridPrincipalId string = eventGrid.properties.principalId
