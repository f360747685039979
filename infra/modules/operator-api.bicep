// The rotator's own API in Entra ID. Operators (people or pipelines) get tokens for it, and App Service
// authentication on the function app accepts only those: a function key alone no longer reaches a route.
// Two app roles: Rotation.Operator may roll a secret (POST), Rotation.Reader may read state and the
// credential inventory (GET). appRoleAssignmentRequired means nobody in the tenant gets a token for the
// API until an owner assigns them one of the roles (Enterprise applications > the API > Users and groups).
// The deployer needs the right to register applications (the tenant default, or Application Developer);
// without it, register the API by hand and pass its client id as operatorApiClientId (docs/deploy.md).
// checkov cannot parse the extension statement with the pycep version it pins; `make infra-check`
// skips this file there, and tests/infra parses and checks it.
extension microsoftGraphV1

@description('Unique name of the API app registration (idempotent key for redeploys).')
param uniqueName string

@description('Display name of the API app registration.')
param displayName string

@description('App role value that may roll a secret; the app setting ROTATION_OPERATOR_ROLE names the same.')
param operatorRole string = 'Rotation.Operator'

@description('App role value that may read rotation state and the inventory.')
param readerRole string = 'Rotation.Reader'

// api://<tenant id>/<name>: a form Entra accepts without a verified domain.
var identifierUri = 'api://${tenant().tenantId}/${uniqueName}'

resource api 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    identifierUri
  ]
  api: {
    // v2 tokens: issuer https://login.microsoftonline.com/<tenant>/v2.0, audience the client id.
    requestedAccessTokenVersion: 2
  }
  appRoles: [
    {
      id: guid(uniqueName, operatorRole)
      value: operatorRole
      displayName: 'Rotation operator'
      description: 'Roll a managed secret now (POST /api/secrets/{vault}/{name}/rotate).'
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
    {
      id: guid(uniqueName, readerRole)
      value: readerRole
      displayName: 'Rotation reader'
      description: 'Read rotation state and the credential inventory (GET /api/secrets, /api/inventory).'
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
  ]
}

resource apiServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: api.appId
  appRoleAssignmentRequired: true
}

output clientId string = api.appId
output audience string = identifierUri
output servicePrincipalId string = apiServicePrincipal.id
