// One storage account for the Functions host, the deployment package, the jobs queue, the
// durable task hub and the app's tables. Shared keys are off: every client (host, durable
// extension, the app's own clients, azd's deploy) authenticates with Entra ID.
param name string
param location string
param tags object = {}
param deploymentContainerName string
@description('Storage queue of submitted jobs (the JOBS_QUEUE app setting); the host adds <name>-poison.')
param jobsQueueName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_206: LRS is enough: jobs, transcripts and durable state are short-lived (RETENTION_DAYS) and a region outage fails the app anyway.
  // checkov:skip=CKV_AZURE_35: default network action Allow, for the same reason as CKV_AZURE_59 below.
  // checkov:skip=CKV_AZURE_59: public endpoint kept on: Flex Consumption without VNet integration reaches storage over it; shared keys are off and every caller needs an Entra role.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The queue trigger creates these on first use too; creating them here means the HTTP
// trigger can enqueue before the first queue poll, and the poison queue is visible at once.
resource jobsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: jobsQueueName
}

resource jobsPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${jobsQueueName}-poison'
}

// Tables (the app's, prefixed by TABLE_PREFIX, and the durable task hub's) are created by
// their owners at startup under Storage Table Data Contributor.
resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
