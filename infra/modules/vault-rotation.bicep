// Everything the rotator needs on one vault, deployed into the vault's own resource group:
// - Key Vault Secrets Officer for the rotator identity, scoped to this vault only;
// - with rotationCertificates, Key Vault Certificates Officer and Key Vault Crypto User too (managed
//   certificates: new versions from their policy, and signing addKey proofs and client assertions with
//   the key behind a version, which never leaves the vault), scoped the same way;
// - an Event Grid system topic on the vault, unless the vault has one already (Key Vault allows one
//   per vault; then the deployer names it and the rotator subscribes to that one).
// The event subscription itself is not here: Event Grid validates that on_key_vault_event exists when
// a subscription is created, which is true only after `azd deploy`, so the postdeploy hook creates it
// (infra/hooks/create-event-subscriptions.*) and nothing needs a second provisioning.

@description('Name of an existing vault in this resource group.')
param vaultName string

@description('Principal (object) id of the rotator identity.')
param rotatorPrincipalId string

@description('Name of the system topic on the vault: created here (evgt-<vault>-<token>), or the vault\'s existing one when createSystemTopic is false.')
param systemTopicName string

@description('Create the system topic. False for a vault that already has one: Key Vault refuses a second system topic per vault.')
param createSystemTopic bool = true

@description('Resource id of the user-assigned identity Event Grid uses to write dead letters (attached to a topic created here).')
param eventGridIdentityId string

@description('Rotate managed certificates too (ROTATION_CERTIFICATES): grant the two roles that needs on this vault.')
param rotationCertificates bool = false

@description('Tags for the system topic.')
param tags object = {}

var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var keyVaultCertificatesOfficer = 'a4417e6f-fecd-4de8-b567-7b0420556985'
var keyVaultCryptoUser = '12338af0-0e69-4776-bea7-57ae8d297424'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

// Scoped to the vault: the rotator can read and write secrets here and nowhere else. It grants
// something only if the vault authorizes with Azure RBAC; the postprovision hook checks that.
resource rotatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, rotatorPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: rotatorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Only for managed certificates: create a certificate's next version from its own policy and update
// its tags (Certificates Officer), and sign with the key behind a version (Crypto User: keys/sign).
resource rotatorCertificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (rotationCertificates) {
  name: guid(vault.id, rotatorPrincipalId, keyVaultCertificatesOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCertificatesOfficer)
    principalId: rotatorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource rotatorCryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (rotationCertificates) {
  name: guid(vault.id, rotatorPrincipalId, keyVaultCryptoUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoUser)
    principalId: rotatorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (createSystemTopic) {
  name: systemTopicName
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

output vaultId string = vault.id
output vaultUri string = vault.properties.vaultUri
