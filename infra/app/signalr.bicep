// Azure SignalR Service in Serverless mode with access keys off: the app negotiates
// (:generateToken) and sends (REST) with its managed identity only.
param name string
param location string
param tags object = {}

@description('Free_F1 (20 connections, 20k messages/day), Standard_S1 or Premium_P1.')
@allowed(['Free_F1', 'Standard_S1', 'Premium_P1'])
param skuName string = 'Standard_S1'

@description('Units: 1,000 connections and about 200 REST sends/s each (see docs/deploy.md for sizing).')
@allowed([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
param capacity int = 1

@description('Origins allowed to reach the client endpoint (negotiate redirect, WebSockets).')
param allowedOrigins array

var tier = split(skuName, '_')[0]

resource signalR 'Microsoft.SignalRService/signalR@2024-03-01' = {
  name: name
  location: location
  tags: tags
  kind: 'SignalR'
  sku: {
    name: skuName
    tier: tier
    capacity: skuName == 'Free_F1' ? 1 : capacity
  }
  properties: {
    features: [
      {
        flag: 'ServiceMode'
        value: 'Serverless'
      }
      {
        flag: 'EnableConnectivityLogs'
        value: 'True'
      }
    ]
    cors: {
      allowedOrigins: allowedOrigins
    }
    disableLocalAuth: true
    disableAadAuth: false
    publicNetworkAccess: 'Enabled'
    tls: {
      clientCertEnabled: false
    }
  }
}

output name string = signalR.name
output id string = signalR.id
output hostName string = signalR.properties.hostName
