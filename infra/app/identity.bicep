// The app's one user-assigned managed identity: storage, SignalR, Azure OpenAI, App Insights
// ingestion and the Entra app registration's federated credential all trust this principal.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
