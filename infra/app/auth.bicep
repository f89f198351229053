// App Service Authentication (Easy Auth v2) in front of the function app. With it on, the
// platform strips any X-MS-CLIENT-PRINCIPAL* header a caller sends and injects its own, and
// sets WEBSITE_AUTH_ENABLED=True, which is what makes the app trust those headers.
//
// Pages are redirected to sign-in. /api/* is excluded from that redirect (a script's fetch
// must not be sent to a login page): those requests reach the app, which answers 401 with a
// JSON body when no platform principal is present, and serves /api/health to anyone.
param siteName string
param clientId string
@description('App setting that names the managed identity used instead of a client secret.')
param clientSecretSettingName string = 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: this is a sites/config child, not a site; this resource is App Service Authentication (authsettingsV2).
  // checkov:skip=CKV_AZURE_63: site-level check misapplied to a sites/config child; logs go to Application Insights.
  // checkov:skip=CKV_AZURE_65: site-level check misapplied to a sites/config child; detailed error pages would leak internals.
  // checkov:skip=CKV_AZURE_66: site-level check misapplied to a sites/config child; failed request tracing is a Windows IIS feature.
  // checkov:skip=CKV_AZURE_80: site-level check misapplied to a sites/config child; this is a Python app, no .NET Framework.
  // checkov:skip=CKV_AZURE_88: site-level check misapplied to a sites/config child; Flex Consumption has no Azure Files mount.
  // checkov:skip=CKV_AZURE_222: site-level check misapplied to a sites/config child; see the site's own skip.
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: [
        '/api/*'
      ]
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          clientSecretSettingName: clientSecretSettingName
        }
        validation: {
          allowedAudiences: [
            clientId
            'api://${clientId}'
          ]
        }
      }
    }
    login: {
      // Provider tokens are not used by the app; the session cookie is enough.
      tokenStore: {
        enabled: false
      }
      preserveUrlFragmentsForLogins: false
      cookieExpiration: {
        convention: 'FixedTime'
        timeToExpiration: '08:00:00'
      }
      nonce: {
        validateNonce: true
        nonceExpirationInterval: '00:05:00'
      }
    }
  }
}
