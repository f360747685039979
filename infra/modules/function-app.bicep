// The rotator: a Python 3.11 function app on the Flex Consumption plan, running as a user-assigned
// managed identity. Every app setting the app reads is set here; none of them is a secret.

@description('Function app name (globally unique host name).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Region of the plan and the app.')
param location string

@description('Tags for every resource.')
param tags object = {}

@description('azd service name in azure.yaml; azd finds the app to deploy by this tag.')
param serviceName string = 'rotator'

@description('Resource id of the rotator user-assigned identity.')
param identityId string

@description('Client id of the rotator user-assigned identity.')
param identityClientId string

@description('Storage account used as AzureWebJobsStorage (identity-based).')
param storageAccountName string

@description('Blob endpoint of that account, e.g. https://<name>.blob.core.windows.net/.')
param blobEndpoint string

@description('Queue endpoint of that account.')
param queueEndpoint string

@description('Blob container for the deployment package.')
param deploymentContainerName string

@description('Application Insights component in this resource group.')
param appInsightsName string

@description('ROTATION_VAULTS: comma-separated name=https://name.vault.azure.net entries.')
param rotationVaults string

@description('ROTATION_GRAPH_URL: Microsoft Graph base URL (change only for a national cloud).')
param graphUrl string = 'https://graph.microsoft.com/v1.0'

@description('ROTATION_VALIDITY_DAYS: lifetime of new credentials.')
@minValue(1)
@maxValue(730)
param validityDays int = 90

@description('ROTATION_ROTATE_BEFORE_DAYS: rotate when expiry is this close.')
@minValue(0)
@maxValue(365)
param rotateBeforeDays int = 30

@description('ROTATION_GRACE_HOURS: keep the old credential this long after the new one is proven.')
@minValue(0)
@maxValue(720)
param graceHours int = 24

@description('ROTATION_VALIDATION_DEADLINE_SECONDS: how long validation waits out Entra propagation.')
@minValue(5)
@maxValue(600)
param validationDeadlineSeconds int = 180

@description('ROTATION_VALIDATION_SUCCESSES: consecutive token successes that prove a new secret.')
@minValue(1)
@maxValue(20)
param validationSuccesses int = 3

@description('ROTATION_ORPHAN_MARGIN_MINUTES: age after which an unreferenced rotator credential is an orphan.')
@minValue(0)
@maxValue(10080)
param orphanMarginMinutes int = 60

@description('ROTATION_THROTTLE_RETRY_SECONDS: longest wait on Graph/Key Vault throttling.')
@minValue(0)
@maxValue(600)
param throttleRetrySeconds int = 120

@description('ROTATION_SCHEDULE: NCRONTAB of the sweep timer.')
param schedule string = '0 0 * * * *'

@description('ROTATION_EXPIRY_SCHEDULE: NCRONTAB of the daily expiry notices timer (must fire once per UTC day).')
param expirySchedule string = '0 0 6 * * *'

@description('ROTATION_EXPIRY_WINDOWS_DAYS: days before expiry at which every readable credential gets a CredentialExpiryNotice, comma-separated.')
@minLength(1)
param expiryWindowsDays string = '30,14,7,1,0'

@description('ROTATION_RETIREMENT_EVIDENCE: off, auto (use the sign-in report when readable) or required (no retirement without it).')
@allowed(['off', 'auto', 'required'])
param retirementEvidence string = 'auto'

@description('ROTATION_EVIDENCE_QUIET_HOURS: how long the sign-in report must show an old credential unused before it is retired.')
@minValue(0)
@maxValue(2160)
param evidenceQuietHours int = 72

@description('ROTATION_EVENTS_TOPIC: endpoint of an Event Grid topic that lifecycle events are published to (the identity needs EventGrid Data Sender on it); empty: none.')
param eventsTopic string = ''

@description('ROTATION_CERTIFICATES: rotate managed Key Vault certificates too (the vaults grant the two roles it needs).')
param rotationCertificates bool = false

@description('ROTATION_OPERATOR_ROLE: app role an operator needs for the HTTP rotate endpoint.')
param operatorRole string = 'Rotation.Operator'

@description('ROTATION_READER_ROLE: app role a caller needs for the HTTP read routes (status, list, inventory); an operator may read too.')
param readerRole string = 'Rotation.Reader'

@description('ROTATION_ALLOWED_HOSTS: hosts allowed as authority, Graph or vault endpoints besides those of the Azure clouds (empty: none).')
param allowedHosts string = ''

@description('ROTATION_ALLOWED_TENANTS: tenants a secret\'s TenantId tag may name, comma-separated (empty: only the home tenant).')
param allowedTenants string = ''

@description('ROTATION_SWEEP_CONCURRENCY: secrets the sweep inspects at once.')
@minValue(1)
@maxValue(64)
param sweepConcurrency int = 4

@description('ROTATION_EXPIRY_ALERT_DAYS: the sweep logs CredentialExpiring within this many days of expiry.')
@minValue(0)
@maxValue(365)
param expiryAlertDays int = 14

@description('Client (application) id of the rotator API app registration: App Service authentication accepts only tokens issued for it.')
param operatorApiClientId string

@description('Identifier URI of that API, accepted as a token audience besides its client id (empty: the client id only).')
param operatorApiAudience string = ''

// Flex Consumption scales each function group (the HTTP routes together; the timer, the Event Grid
// handler, the worker and the poison handler each on their own) up to this many on-demand instances.
// The work is small and mostly waiting (validation waits out Entra's propagation): one worker
// instance reconciles several secrets at once (host.json batchSize), and a sweep that finds many due
// should queue them rather than fan out against Graph's and Key Vault's throttling budgets. Two keeps a
// second instance for overlap and restarts; the platform's floor is now 1 (it was 40).
@description('Most on-demand instances per function scale group (Flex Consumption allows 1-1000).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 2

@description('Memory of each instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // checkov:skip=CKV_AZURE_225: zone redundancy is a separate Flex option with always-ready cost; the rotator tolerates a zone outage (the timer re-sweeps)
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    // checkov:skip=CKV_AZURE_17: Event Grid and operators call with function keys, not client certificates
    // checkov:skip=CKV_AZURE_222: Event Grid delivers over the public endpoint; without VNet integration the app must stay reachable
    // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per function; there is no instance minimum to set
    // checkov:skip=CKV_AZURE_213: no HTTP health endpoint; the host is probed by the platform and failures alert through App Insights
    // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP endpoint and rejects siteConfig.ftpsState (ARM error 51021)
    // checkov:skip=CKV_AZURE_67: Flex Consumption does not offer the HTTP/2 site setting, so http20Enabled is left out
    // checkov:skip=CKV_AZURE_18: same reason as CKV_AZURE_67
    // checkov:skip=CKV_AZURE_72: Flex Consumption offers no remote debugging, so the setting is left out
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    // Only settings Flex Consumption accepts: it rejects e.g. ftpsState, alwaysOn and linuxFxVersion.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // Flex Consumption takes the language here; it rejects FUNCTIONS_WORKER_RUNTIME as an app setting.
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Deployments authenticate with Entra ID (azd uses a bearer token), so basic publishing credentials for
// the SCM endpoint stay off. (Flex Consumption has no FTP endpoint.)
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// App Service authentication in front of every HTTP route: a request without a valid Entra ID token
// for the rotator API is answered 401 by the platform before it reaches the function, and the platform
// (not the caller) sets X-MS-CLIENT-PRINCIPAL, which the function reads for the caller's app roles.
resource authentication 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    // checkov reads every sites/config resource as a whole site; these checks concern other settings:
    // checkov:skip=CKV_AZURE_13: this resource is App Service authentication itself (enabled, required, Return401)
    // checkov:skip=CKV_AZURE_222: public network access is set (and justified) on the site
    // checkov:skip=CKV_AZURE_63: file-system logs that Flex Consumption lacks; telemetry goes to Application Insights
    // checkov:skip=CKV_AZURE_65: same reason as CKV_AZURE_63
    // checkov:skip=CKV_AZURE_66: same reason as CKV_AZURE_63
    // checkov:skip=CKV_AZURE_80: a Python app; no .NET Framework version applies
    // checkov:skip=CKV_AZURE_88: Flex Consumption runs from the deployment blob container and mounts no Azure Files share
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      // Event Grid delivers to the host's webhook with the system key and cannot get a token for this API.
      excludedPaths: [
        '/runtime/webhooks/eventgrid'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: operatorApiClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: concat([operatorApiClientId], empty(operatorApiAudience) ? [] : [operatorApiAudience])
        }
      }
    }
  }
}

// Keep in sync with local.settings.sample.json (tests/infra checks it). AzureWebJobsStorage is the
// identity form (__accountName/__credential/__clientId); the connection string is not a secret because
// App Insights has local authentication disabled, so ingestion needs the identity's Entra ID token.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: {
    // checkov:skip=CKV_AZURE_56: App Service authentication is configured in the authsettingsV2 resource above, which this check does not read
    // checkov:skip=CKV_AZURE_13: same reason as CKV_AZURE_56
    // checkov:skip=CKV_AZURE_222: this is the appsettings config; public network access is set (and justified) on the site
    // checkov:skip=CKV_AZURE_63: HTTP logs, detailed errors and request tracing are App Service file-system logs that Flex Consumption lacks; telemetry goes to Application Insights
    // checkov:skip=CKV_AZURE_65: same reason as CKV_AZURE_63
    // checkov:skip=CKV_AZURE_66: same reason as CKV_AZURE_63
    // checkov:skip=CKV_AZURE_80: a Python app; no .NET Framework version applies
    // checkov:skip=CKV_AZURE_88: Flex Consumption runs from the deployment blob container and mounts no Azure Files share
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: blobEndpoint
    AzureWebJobsStorage__queueServiceUri: queueEndpoint
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
    AZURE_CLIENT_ID: identityClientId
    AZURE_AUTHORITY_HOST: environment().authentication.loginEndpoint
    ROTATION_VAULTS: rotationVaults
    ROTATION_TENANT_ID: tenant().tenantId
    ROTATION_GRAPH_URL: graphUrl
    ROTATION_VALIDITY_DAYS: string(validityDays)
    ROTATION_ROTATE_BEFORE_DAYS: string(rotateBeforeDays)
    ROTATION_GRACE_HOURS: string(graceHours)
    ROTATION_VALIDATION_DEADLINE_SECONDS: string(validationDeadlineSeconds)
    ROTATION_VALIDATION_SUCCESSES: string(validationSuccesses)
    ROTATION_ORPHAN_MARGIN_MINUTES: string(orphanMarginMinutes)
    ROTATION_THROTTLE_RETRY_SECONDS: string(throttleRetrySeconds)
    ROTATION_SCHEDULE: schedule
    ROTATION_EXPIRY_SCHEDULE: expirySchedule
    ROTATION_EXPIRY_WINDOWS_DAYS: expiryWindowsDays
    ROTATION_OPERATOR_ROLE: operatorRole
    ROTATION_READER_ROLE: readerRole
    // The function validates operators' tokens itself too: the same audiences App Service authentication accepts.
    ROTATION_API_AUDIENCE: empty(operatorApiAudience) ? operatorApiClientId : '${operatorApiClientId},${operatorApiAudience}'
    ROTATION_ALLOWED_HOSTS: allowedHosts
    ROTATION_ALLOWED_TENANTS: allowedTenants
    ROTATION_SWEEP_CONCURRENCY: string(sweepConcurrency)
    ROTATION_EXPIRY_ALERT_DAYS: string(expiryAlertDays)
    ROTATION_RETIREMENT_EVIDENCE: retirementEvidence
    ROTATION_EVIDENCE_QUIET_HOURS: string(evidenceQuietHours)
    ROTATION_EVENTS_TOPIC: eventsTopic
    ROTATION_CERTIFICATES: rotationCertificates ? 'true' : 'false'
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
