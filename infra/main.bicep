// One `azd up`: a resource group with the function app (Flex Consumption, Python 3.11),
// storage, SignalR Service, Azure OpenAI, monitoring, the app's identity and its roles, and
// App Service Authentication backed by an Entra app registration without a client secret.
// Raw resource declarations only (no registry modules): everything here can be read and
// checked offline (tests/infra/).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource except Azure OpenAI (Flex Consumption must be offered there).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Region of the Azure OpenAI account (the model must be offered there); empty: location.')
param openAiLocation string = ''

@description('Object id of the deploying user (azd sets AZURE_PRINCIPAL_ID).')
param principalId string = ''
@description('Give the deploying user the app\'s data roles, for running the app locally against Azure.')
param grantUserDataAccess bool = false

// --- Azure OpenAI model: parameters, because models retire -------------------------------
@description('Deployment name (the AZURE_OPENAI_DEPLOYMENT app setting).')
param chatDeploymentName string = 'chat'
param chatModelName string = 'gpt-5.4'
param chatModelVersion string = '2026-03-05'
@allowed(['GlobalStandard', 'DataZoneStandard', 'Standard'])
param chatDeploymentSku string = 'GlobalStandard'
@description('Thousands of tokens per minute.')
@minValue(1)
param chatModelCapacity int = 50
@description('\'reasoning\' for GPT-5-series and o-series models (max_completion_tokens, fixed temperature); \'chat\' otherwise.')
@allowed(['chat', 'reasoning'])
param modelProfile string = 'reasoning'

// --- SignalR Service size ----------------------------------------------------------------
@allowed(['Free_F1', 'Standard_S1', 'Premium_P1'])
param signalRSku string = 'Standard_S1'
@allowed([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
param signalRCapacity int = 1

// --- Function app scale --------------------------------------------------------------------
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40
@description('Jobs queued or running across all users; size to the model deployment\'s quota.')
@minValue(1)
param globalMaxConcurrentJobs int = 100

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
// Flex Consumption apps created without a unique default host name answer on this one.
var functionAppHostName = '${functionAppName}.azurewebsites.net'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'
var jobsQueueName = 'jobs'
var signalRName = '${abbrs.signalRServiceSignalR}${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    jobsQueueName: jobsQueueName
  }
}

module openAi 'app/openai.bicep' = {
  name: 'openai'
  scope: rg
  params: {
    name: '${abbrs.cognitiveServicesAccounts}${resourceToken}'
    location: empty(openAiLocation) ? location : openAiLocation
    tags: tags
    deploymentName: chatDeploymentName
    modelName: chatModelName
    modelVersion: chatModelVersion
    deploymentSkuName: chatDeploymentSku
    capacity: chatModelCapacity
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    // Known before the service exists, so the app and the service do not depend on each other.
    signalREndpoint: 'https://${signalRName}.service.signalr.net'
    openAiEndpoint: openAi.outputs.endpoint
    openAiDeploymentName: openAi.outputs.deploymentName
    modelProfile: modelProfile
    jobsQueueName: jobsQueueName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    globalMaxConcurrentJobs: globalMaxConcurrentJobs
  }
}

module signalR 'app/signalr.bicep' = {
  name: 'signalr'
  scope: rg
  params: {
    name: signalRName
    location: location
    tags: tags
    skuName: signalRSku
    capacity: signalRCapacity
    // The page is served by the function app itself: its origin is the only one.
    allowedOrigins: [
      'https://${api.outputs.defaultHostName}'
    ]
  }
}

module entra 'app/entra.bicep' = {
  name: 'entra'
  scope: rg
  params: {
    uniqueName: '${functionAppName}-auth'
    displayName: 'LLM stream relay (${environmentName})'
    functionAppHostName: functionAppHostName
    identityPrincipalId: identity.outputs.principalId
    tags: tags
  }
}

module auth 'app/auth.bicep' = {
  name: 'auth'
  scope: rg
  params: {
    siteName: api.outputs.name
    clientId: entra.outputs.clientId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    signalRName: signalR.outputs.name
    openAiName: openAi.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    grantUserDataAccess: grantUserDataAccess
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = 'https://${api.outputs.defaultHostName}'
output AZURE_CLIENT_ID string = identity.outputs.clientId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_SIGNALR_NAME string = signalR.outputs.name
output AZURE_OPENAI_ENDPOINT string = openAi.outputs.endpoint
output AZURE_OPENAI_DEPLOYMENT string = openAi.outputs.deploymentName
output MODEL_PROFILE string = modelProfile
output ENTRA_APPLICATION_ID string = entra.outputs.clientId
