// Grants the rotator identity the Microsoft Graph application permission Application.ReadWrite.OwnedBy:
// it may add and remove passwords only on app registrations that list the identity as an owner,
// never on the other apps of the tenant (which the tenant-wide variant would allow).
// The deployer must be allowed to grant app roles (e.g. Privileged Role Administrator).
// checkov cannot parse the extension statement with the pycep version it pins; `make infra-check`
// skips this file there, and tests/infra parses and checks it.
extension microsoftGraphV1

@description('Principal (object) id of the rotator identity.')
param principalId string

// Microsoft Graph's first-party application id, the same in every tenant.
var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'

// Application.ReadWrite.OwnedBy (application permission), from the Microsoft Graph permissions reference.
var applicationReadWriteOwnedBy = '18a4783c-866b-4cc7-a460-3d5e5662c884'

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

resource ownedByGrant 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  appRoleId: applicationReadWriteOwnedBy
  principalId: principalId
  resourceId: microsoftGraph.id
}

output appRoleAssignmentId string = ownedByGrant.id
