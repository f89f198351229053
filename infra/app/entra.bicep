// The Entra app registration App Service Authentication signs users in with. It has no
// client secret: a federated identity credential lets the app's managed identity stand in
// for one (OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID in api.bicep and auth.bicep).
extension microsoftGraphV1

@description('Stable unique name of the registration (idempotent redeploys).')
param uniqueName string
param displayName string
@description('Host name of the function app, for the sign-in callback.')
param functionAppHostName string
param identityPrincipalId string
param tags object = {}

var tagStrings = [for tag in items(tags): '${tag.key}:${tag.value}']

resource application 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  tags: tagStrings
  web: {
    redirectUris: [
      'https://${functionAppHostName}/.auth/login/aad/callback'
    ]
    implicitGrantSettings: {
      enableAccessTokenIssuance: false
      enableIdTokenIssuance: true
    }
  }
  requiredResourceAccess: [
    {
      resourceAppId: '00000003-0000-0000-c000-000000000000' // Microsoft Graph
      resourceAccess: [
        {
          id: 'e1fe6dd8-ba31-4d61-89e7-88639da4683d' // User.Read (delegated): sign-in and profile
          type: 'Scope'
        }
      ]
    }
  ]
}

resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: application.appId
  tags: tagStrings
}

resource federatedCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${application.uniqueName}/app-managed-identity'
  description: 'The function app managed identity stands in for a client secret.'
  audiences: [
    'api://AzureADTokenExchange'
  ]
  issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
  subject: identityPrincipalId
}

output clientId string = application.appId
output objectId string = application.id
output servicePrincipalId string = servicePrincipal.id
