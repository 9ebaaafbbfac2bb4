@description('Least privilege: each identity gets only the data roles it uses, each scoped to the resource it uses.')
param storageAccountName string
param serviceBusName string
param registryName string
param trainerJobName string
param functionsPrincipalId string
param workerPrincipalId string
param trainerPrincipalId string
param insightsName string
param requestsQueue string = 'finetune-requests'
param trainingTopic string = 'training-events'
param modelTopic string = 'model-events'

var roles = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  containerAppsJobsOperator: 'b9a307c4-5aa3-4b52-ba60-2b17c136cd7b'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: insightsName
}

// With local auth off, telemetry is accepted only from identities holding this role on the component.
resource telemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principal in [functionsPrincipalId, workerPrincipalId, trainerPrincipalId]: {
  scope: insights
  name: guid(insights.id, principal, roles.monitoringMetricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principal
    principalType: 'ServicePrincipal'
  }
}]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: serviceBusName
}

resource requests 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' existing = {
  parent: namespace
  name: requestsQueue
}

resource training 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' existing = {
  parent: namespace
  name: trainingTopic
}

resource models 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' existing = {
  parent: namespace
  name: modelTopic
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource trainerJob 'Microsoft.App/jobs@2025-01-01' existing = {
  name: trainerJobName
}

// Blob data: every stage reads and writes the storage layout.
resource blobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principal in [functionsPrincipalId, workerPrincipalId, trainerPrincipalId]: {
  scope: storage
  name: guid(storage.id, principal, roles.storageBlobDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principal
    principalType: 'ServicePrincipal'
  }
}]

// Ingest (functions) and Dispatch retries (worker) send requests; Prepare (worker) receives them.
resource requestSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principal in [functionsPrincipalId, workerPrincipalId]: {
  scope: requests
  name: guid(requests.id, principal, roles.serviceBusDataSender)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principal
    principalType: 'ServicePrincipal'
  }
}]

resource requestReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: requests
  name: guid(requests.id, workerPrincipalId, roles.serviceBusDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The trainer publishes training events (the worker too, for a trainer that died); the worker receives them.
resource trainingSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principal in [trainerPrincipalId, workerPrincipalId]: {
  scope: training
  name: guid(training.id, principal, roles.serviceBusDataSender)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principal
    principalType: 'ServicePrincipal'
  }
}]

resource trainingReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: training
  name: guid(training.id, workerPrincipalId, roles.serviceBusDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Publish (worker) and Prepare's DatasetRejected (worker) announce model events.
resource modelSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: models
  name: guid(models.id, workerPrincipalId, roles.serviceBusDataSender)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The dispatcher may start, stop and read executions of the trainer job, and nothing else.
resource dispatcher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: trainerJob
  name: guid(trainerJob.id, workerPrincipalId, roles.containerAppsJobsOperator)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.containerAppsJobsOperator)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource pulls 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principal in [workerPrincipalId, trainerPrincipalId]: {
  scope: registry
  name: guid(registry.id, principal, roles.acrPull)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: principal
    principalType: 'ServicePrincipal'
  }
}]
