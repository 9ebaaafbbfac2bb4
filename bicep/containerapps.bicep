param prefix string
param location string
param tags object
@description('Log Analytics workspace the environment sends its logs to (through a diagnostic setting: no workspace key).')
param workspaceId string
param registryServer string
param trainerImage string
param workerImage string
param trainerIdentityId string
param trainerClientId string
param workerIdentityId string
param workerClientId string
param blobEndpoint string

@description('Fully qualified Service Bus namespace (NAME.servicebus.windows.net), for the hosts.')
param serviceBusNamespace string

@description('Bare Service Bus namespace name, for the KEDA scaler: it appends .servicebus.windows.net itself.')
param serviceBusNamespaceName string

@description('Application Insights component the hosts export traces to (local auth is off: they authenticate with their identity).')
param insightsName string

@description('Requests queue the worker consumes (Prepare + Dispatch).')
param requestsQueue string = 'finetune-requests'

@description('Topic of training events.')
param trainingTopic string = 'training-events'

@description('Subscription of the training topic the worker consumes for Publish.')
param publisherSubscription string = 'publisher'

@description('Subscription of the training topic the worker consumes for job status.')
param statusSubscription string = 'status'

@description('Seconds a worker replica gets after SIGTERM: its host shutdown timeout is 60 s.')
param workerGracePeriodSeconds int = 60

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
    // 'azure-monitor': logs go through the diagnostic setting below, so the template never reads the workspace's shared
    // key (the 'log-analytics' destination needs it, through listKeys).
    appLogsConfiguration: {
      destination: 'azure-monitor'
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

resource environmentLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'logs'
  scope: environment
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'ContainerAppConsoleLogs'
        enabled: true
      }
      {
        category: 'ContainerAppSystemLogs'
        enabled: true
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
      // No platform retry: the pipeline retries a failed training itself, and a retried replica would re-run a trainer
      // that has already reported its failure.
      replicaRetryLimit: 0
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
    // No terminationGracePeriodSeconds here: the jobs API's JobTemplate has only containers, initContainers and volumes
    // (no API version of Microsoft.App/jobs, up to 2026-01-01, accepts it), so a stopped execution gets the platform
    // default of 30 s between SIGTERM and SIGKILL. The trainer must checkpoint within that window.
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

// azd deploys the `worker` service of azure.yaml to the container app that carries this tag.
resource worker 'Microsoft.App/containerApps@2025-01-01' = {
  name: '${prefix}-worker'
  location: location
  tags: union(tags, { 'azd-service-name': 'worker' })
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
      terminationGracePeriodSeconds: workerGracePeriodSeconds
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
              value: trainer.id
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
        // One rule per entity the worker consumes; the replica count follows the busiest. KEDA reads the active message
        // count with the worker identity (Azure Service Bus Data Owner on each entity, granted in rbac.bicep).
        rules: [
          {
            name: 'requests'
            custom: {
              type: 'azure-servicebus'
              metadata: {
                queueName: requestsQueue
                namespace: serviceBusNamespaceName
                messageCount: '5'
              }
              identity: workerIdentityId
            }
          }
          {
            name: 'training-publisher'
            custom: {
              type: 'azure-servicebus'
              metadata: {
                topicName: trainingTopic
                subscriptionName: publisherSubscription
                namespace: serviceBusNamespaceName
                messageCount: '5'
              }
              identity: workerIdentityId
            }
          }
          {
            name: 'training-status'
            custom: {
              type: 'azure-servicebus'
              metadata: {
                topicName: trainingTopic
                subscriptionName: statusSubscription
                namespace: serviceBusNamespaceName
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

output environmentId string = environment.id
output trainerJobId string = trainer.id
output trainerJobName string = trainer.name
output workerName string = worker.name
