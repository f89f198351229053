// The Flex Consumption function app (Python 3.11) running as the user-assigned identity, and
// every app setting it reads in Azure. relay/_manifest.py is the list of settings; the
// tests in tests/infra/ check this file against it.
param name string
param planName string
param location string
param tags object = {}

param identityId string
param identityClientId string

param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string

param applicationInsightsConnectionString string
param signalREndpoint string
param openAiEndpoint string
param openAiDeploymentName string
@allowed(['chat', 'reasoning'])
param modelProfile string
param jobsQueueName string

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40
@minValue(1)
param globalMaxConcurrentJobs int = 100

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption needs always-ready instances in several zones (billed at rest) and is offered in few regions; a zone outage delays queued jobs, which are retried.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: public network access is the product: browsers reach the page and API over the internet, behind App Service Authentication (auth.bicep).
  // checkov:skip=CKV_AZURE_17: no client certificates: browsers sign in with Entra ID through App Service Authentication.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales to zero by design; a minimum instance count (always ready) is billed at rest.
  // checkov:skip=CKV_AZURE_213: no platform health check: its probe would keep an instance billed at rest on a scale-to-zero plan; /api/health is open for external probes.
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No FUNCTIONS_WORKER_RUNTIME / WEBSITE_RUN_FROM_PACKAGE: Flex Consumption takes them from
// functionAppConfig and rejects them as settings. No AzureWebJobsStorage connection string,
// no keys: storage, SignalR, Azure OpenAI and App Insights all use the identity.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: this is a sites/config child, not a site; App Service Authentication is auth.bicep (authsettingsV2).
  // checkov:skip=CKV_AZURE_63: site-level check misapplied to a sites/config child; logs go to Application Insights.
  // checkov:skip=CKV_AZURE_65: site-level check misapplied to a sites/config child; detailed error pages would leak internals.
  // checkov:skip=CKV_AZURE_66: site-level check misapplied to a sites/config child; failed request tracing is a Windows IIS feature.
  // checkov:skip=CKV_AZURE_80: site-level check misapplied to a sites/config child; this is a Python app, no .NET Framework.
  // checkov:skip=CKV_AZURE_88: site-level check misapplied to a sites/config child; Flex Consumption has no Azure Files mount.
  // checkov:skip=CKV_AZURE_222: site-level check misapplied to a sites/config child; see the site's own skip.
  parent: site
  name: 'appsettings'
  properties: {
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
    AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
    AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
    AZURE_CLIENT_ID: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    AzureSignalRConnectionString: 'Endpoint=${signalREndpoint};AuthType=azure.msi;ClientId=${identityClientId};Version=1.0;'
    SIGNALR_HUB: 'stream'
    AZURE_OPENAI_ENDPOINT: openAiEndpoint
    AZURE_OPENAI_DEPLOYMENT: openAiDeploymentName
    AZURE_OPENAI_API_VERSION: 'v1'
    MODEL_PROFILE: modelProfile
    AUTH_MODE: 'platform'
    JOBS_QUEUE: jobsQueueName
    TABLE_PREFIX: 'relay'
    BATCH_WINDOW_MS: '90'
    BATCH_MAX_BYTES: '2048'
    PROMPT_MAX_CHARS: '32000'
    SYSTEM_MAX_CHARS: '8000'
    MESSAGES_MAX: '64'
    MAX_TOKENS_LIMIT: '4096'
    USER_MAX_CONCURRENT_JOBS: '4'
    USER_JOBS_PER_MINUTE: '20'
    GLOBAL_MAX_CONCURRENT_JOBS: string(globalMaxConcurrentJobs)
    JOB_MAX_ATTEMPTS: '3'
    JOB_TIMEOUT_SECONDS: '600'
    LLM_STALL_TIMEOUT_SECONDS: '30'
    CLIENT_TOKEN_MINUTES: '10'
    RETENTION_DAYS: '7'
    // Read by App Service Authentication, not by the app: the identity's client id, used to
    // get a federated assertion in place of a client secret (auth.bicep).
    OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identityClientId
    WEBSITE_AUTH_AAD_ALLOWED_TENANTS: tenant().tenantId
  }
}

// Deploy with Entra ID (azd uses the deployer's token), never with publishing passwords.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
