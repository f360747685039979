// Log Analytics + Application Insights (Entra ID ingestion only) and the rotation alerts.
// The app writes log lines whose message starts with a fixed word; each alert counts one of them.

@description('Name prefix/suffix token shared by the resources.')
param resourceToken string

@description('Region of the workspace, the component and the alert rules.')
param location string

@description('Tags for every resource.')
param tags object = {}

@description('Principal (object) id of the rotator identity, which publishes telemetry.')
param rotatorPrincipalId string

@description('E-mail address that receives the alerts.')
@minLength(3)
param alertEmail string

@description('ROTATION_EXPIRY_ALERT_DAYS: the sweep logs CredentialExpiring for credentials that expire within this many days.')
@minValue(0)
@maxValue(365)
param expiryAlertDays int

@description('Days the workspace keeps logs.')
@minValue(30)
param retentionInDays int = 30

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

// DisableLocalAuth: the instrumentation key alone cannot ingest; the rotator identity authenticates with
// Entra ID (APPLICATIONINSIGHTS_AUTHENTICATION_STRING) and holds Monitoring Metrics Publisher below.
resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

resource rotatorMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, rotatorPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: rotatorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-rotator-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    enabled: true
    groupShortName: 'rotator'
    emailReceivers: [
      {
        name: 'rotation-operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// One entry per alert. The queries only count lines; no log line carries a secret value.
var alerts = [
  {
    name: 'rotation-failed'
    displayName: 'Secret rotation failed'
    description: 'The rotator logged RotationFailed: a rotation was rolled back or could not finish. Run `python -m rotation diagnose` for the secret named in the log line.'
    severity: 1
    query: 'traces | where message startswith "RotationFailed"'
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: true
    muteActionsDuration: ''
  }
  {
    name: 'rotation-poisoned'
    displayName: 'Rotation request moved to the poison queue'
    description: 'A rotation request failed every delivery attempt and was moved to rotation-requests-poison (RotationPoisoned).'
    severity: 1
    query: 'traces | where message startswith "RotationPoisoned"'
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: true
    muteActionsDuration: ''
  }
  {
    name: 'credential-missing'
    displayName: 'A managed secret names a credential deleted in Entra'
    description: 'The rotator logged CredentialMissing: the credential a managed secret holds was deleted in Entra, so consumers of the secret cannot sign in until the rotator replaces it (it rotates at once). Find out who deleted it (the Entra audit log).'
    severity: 1
    query: 'traces | where message startswith "CredentialMissing"'
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    autoMitigate: false
    muteActionsDuration: 'PT24H'
  }
  {
    name: 'rotation-stopped'
    displayName: 'Secret rotation stopped after repeated failures'
    description: 'The rotator logged RotationStopped: six rotations of a secret failed in a row and it stopped trying. Fix the cause named in the log line, then run `python -m rotation rotate VAULT SECRET --force`.'
    severity: 1
    query: 'traces | where message startswith "RotationStopped"'
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: false
    muteActionsDuration: ''
  }
  {
    name: 'credential-expiring'
    displayName: 'Client secret expires within ${expiryAlertDays} days'
    description: 'The sweep logged CredentialExpiring: a managed credential expires within ROTATION_EXPIRY_ALERT_DAYS (${expiryAlertDays}) days and was not rotated.'
    severity: 2
    query: 'traces | where message startswith "CredentialExpiring"'
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    autoMitigate: false
    muteActionsDuration: 'PT24H'
  }
  {
    // The daily timer logs one line per credential crossing a window (ROTATION_EXPIRY_WINDOWS_DAYS), all
    // at once: one mail per run. Muted for 20 hours, so a second run the same day (which repeats the same
    // notices, see docs/architecture.md) mails nothing new, and the next day's run mails again.
    name: 'credential-expiry-notice'
    displayName: 'App credentials cross an expiry window today'
    description: 'The daily expiry_notices timer logged CredentialExpiryNotice: a password or certificate of an app registration (managed by the rotator or not) expires within one of ROTATION_EXPIRY_WINDOWS_DAYS. Each line names the app, the keyId, the days left and the app owners to contact.'
    severity: 3
    query: 'traces | where message startswith "CredentialExpiryNotice"'
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    autoMitigate: false
    muteActionsDuration: 'PT20H'
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for alert in alerts: {
    name: '${alert.name}-${resourceToken}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: alert.displayName
      description: alert.description
      severity: alert.severity
      enabled: true
      scopes: [
        appInsights.id
      ]
      evaluationFrequency: alert.evaluationFrequency
      windowSize: alert.windowSize
      autoMitigate: alert.autoMitigate
      muteActionsDuration: empty(alert.muteActionsDuration) ? null : alert.muteActionsDuration
      criteria: {
        allOf: [
          {
            query: alert.query
            timeAggregation: 'Count'
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      actions: {
        actionGroups: [
          actionGroup.id
        ]
      }
    }
  }
]

output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
output workspaceId string = workspace.id
output actionGroupId string = actionGroup.id
