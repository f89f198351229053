// Azure OpenAI with key auth off (Entra ID only, which needs the custom subdomain) and one
// chat deployment. Model name, version, SKU and capacity are parameters: models retire.
param name string
param location string
param tags object = {}
param deploymentName string
param modelName string
param modelVersion string
@allowed(['GlobalStandard', 'DataZoneStandard', 'Standard'])
param deploymentSkuName string = 'GlobalStandard'
@description('Capacity in thousands of tokens per minute.')
@minValue(1)
param capacity int

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134: public endpoint kept on: Flex Consumption without VNet integration reaches the account over it; key auth is off and callers need an Entra role.
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  // Unused by the app today; a system identity is what customer-managed keys or outbound
  // calls would need, and it costs nothing (checkov CKV_AZURE_238).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

resource chat 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: deploymentSkuName
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
    // A pinned version is moved to the next default when it retires instead of failing.
    versionUpgradeOption: 'OnceCurrentVersionExpired'
  }
}

output name string = account.name
output id string = account.id
output endpoint string = account.properties.endpoint
output deploymentName string = chat.name
