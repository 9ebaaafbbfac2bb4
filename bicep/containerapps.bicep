param prefix string
param location string
param tags object
param workspaceCustomerId string
param workspaceId string
param registryServer string
param trainerImage string
param workerImage string
param trainerIdentityId string
param trainerClientId string
param workerIdentityId string
param workerClientId string
param blobEndpoint string
param serviceBusNamespace string

@description('Application Insights component the hosts export traces to (local auth is off: they authenticate with their identity).')
param insightsName string

@description('Requests queue the worker scales on.')
param requestsQueue string = 'finetune-requests'

@description('GPU workload profile type for the trainer (serverless GPU).')
param gpuProfileType string = 'Consumption-GPU-NC24-A100'

@description('Longest a training run may take, in seconds.')
param trainerTimeoutSeconds int = 14400

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: insightsName
}

resource environment 'Microsoft.App/managedEnvironments@2025-01-01' = {
  name: '${prefix}-env'
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: workspaceCustomerId
        sharedKey: listKeys(workspaceId, '2023-09-01').primarySharedKey
      }
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
      {
        name: 'gpu'
        workloadProfileType: gpuProfileType
      }
    ]
  }
}

resource trainer 'Microsoft.App/jobs@2025-01-01' = {
  name: '${prefix}-trainer'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${trainerIdentityId}': {}
    }
  }
  properties: {
    environmentId: environment.id
    workloadProfileName: 'gpu'
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: trainerTimeoutSeconds
      replicaRetryLimit: 1
      manualTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
      }
      registries: [
        {
          server: registryServer
          identity: trainerIdentityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'trainer'
          image: trainerImage
          env: [
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
              value: trainerClientId
            }
            {
              name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
              value: insights.properties.ConnectionString
            }
          ]
          resources: {
            cpu: json('24')
            memory: '220Gi'
          }
        }
      ]
    }
  }
}

resource worker 'Microsoft.App/containerApps@2025-01-01' = {
  name: '${prefix}-worker'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${workerIdentityId}': {}
    }
  }
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      registries: [
        {
          server: registryServer
          identity: workerIdentityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'worker'
          image: workerImage
          env: [
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
              value: workerClientId
            }
            {
              name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
              value: insights.properties.ConnectionString
            }
            {
              name: 'Trainer__JobResourceId'
              value: trainerJobId
            }
          ]
          resources: {
            cpu: json('1')
            memory: '2Gi'
          }
        }
      ]
      scale: {
        minReplicas: 0
        maxReplicas: 3
        rules: [
          {
            name: 'requests'
            custom: {
              type: 'azure-servicebus'
              metadata: {
                queueName: requestsQueue
                namespace: serviceBusNamespace
                messageCount: '5'
              }
              identity: workerIdentityId
            }
          }
        ]
      }
    }
  }
}

var trainerJobId = resourceId('Microsoft.App/jobs', '${prefix}-trainer')

output environmentId string = environment.id
output trainerJobId string = trainer.id
output trainerJobName string = trainer.name
output workerName string = worker.name
