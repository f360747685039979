// A Key Vault created for the rotator: RBAC authorization only (no access policies), soft delete with
// purge protection, so neither a bad rotation nor a stolen token can destroy a secret for good.

@description('Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Region of the vault.')
param location string

@description('Tags for the vault.')
param tags object = {}

@description('default: create the vault. recover: bring back the soft-deleted vault of this name (with its secrets), left by an earlier `azd down` of this environment; purge protection keeps the name taken, so creating it anew would fail.')
@allowed([
  'default'
  'recover'
])
param createMode string = 'default'

@description('Days a deleted vault or secret stays recoverable.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // checkov:skip=CKV_AZURE_109: the Flex Consumption app has no VNet integration, so it reaches the vault over its public endpoint; RBAC alone authorizes
    // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109; every data-plane call needs an Entra ID token with a Key Vault role
    tenantId: tenant().tenantId
    createMode: createMode
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
