param prefix string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param blobEndpoint string

@description('Queue endpoint of the host storage account: the blob trigger uses queues there, so an identity-based AzureWebJobsStorage needs it.')
param queueEndpoint string
param serviceBusNamespace string

@description('The trainer Container Apps job: the WatchTrainers timer reads its executions (Reader on the job).')
param trainerJobId string

@description('Application Insights component the app exports traces to (local auth is off: it authenticates with its identity).')
param insightsName string

@description('Container of the uploaded datasets.')
param datasetsContainer string = 'datasets'

@description('Container the Flex Consumption app deploys its package from.')
param deploymentContainer string = 'app-package'

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: insightsName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource deployments 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  name: '${storageAccountName}/default/${deploymentContainer}'
  properties: {
    publicAccess: 'None'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${prefix}-plan'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

// azd deploys the `functions` service of azure.yaml to the app that carries this tag.
resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: '${prefix}-functions'
  location: location
  tags: union(tags, { 'azd-service-name': 'functions' })
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
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        {
          name: 'Trainer__JobResourceId'
          value: trainerJobId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: blobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: queueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'Storage__blobServiceUri'
          value: blobEndpoint
        }
        {
          name: 'ServiceBus__fullyQualifiedNamespace'
          value: serviceBusNamespace
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'DatasetsContainer'
          value: datasetsContainer
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: insights.properties.ConnectionString
        }
        // Local auth is off on the component: the host's own telemetry is accepted only with an Entra token. This names
        // the user-assigned identity the host gets it with (a client id, no secret).
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: 40
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'dotnet-isolated'
        version: '10.0'
      }
    }
  }
  dependsOn: [
    deployments
  ]
}

resource topic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: '${prefix}-storage-events'
  location: location
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// The BlobCreated subscription to the DatasetUploaded webhook is created after deployment by infra/hooks/postdeploy.sh
// (azd postdeploy hook): its URL carries the blobs_extension system key, which exists only once the code is deployed and
// the host has started, and Event Grid's validation handshake needs that running code too.

// No publishing with a user name and password (FTP or the SCM site): deployments use the deployer's Entra identity.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = app.name
output hostName string = app.properties.defaultHostName
output storageEventsTopicName string = topic.name
