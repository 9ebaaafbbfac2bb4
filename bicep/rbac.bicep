@description('Least privilege: each identity gets only the data roles it uses, each scoped to the resource it uses.')
param storageAccountName string
param serviceBusName string
param trainerJobName string
param functionsPrincipalId string
param workerPrincipalId string
param trainerPrincipalId string
param insightsName string
param requestsQueue string = 'finetune-requests'
param trainingTopic string = 'training-events'
param modelTopic string = 'model-events'
param publisherSubscription string = 'publisher'
param statusSubscription string = 'status'

// AcrPull is granted in registry-access.bicep (it must exist before the container apps are created).
var roles = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  containerAppsJobsOperator: 'b9a307c4-5aa3-4b52-ba60-2b17c136cd7b'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
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

resource publisher 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' existing = {
  parent: training
  name: publisherSubscription
}

resource status 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' existing = {
  parent: training
  name: statusSubscription
}

resource trainerJob 'Microsoft.App/jobs@2025-01-01' existing = {
  name: trainerJobName
}

// Blob data: every stage reads and writes the storage layout. The Functions identity gets Storage Blob Data Owner
// instead (below), which includes everything Contributor grants.
resource blobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principal in [workerPrincipalId, trainerPrincipalId]: {
  scope: storage
  name: guid(storage.id, principal, roles.storageBlobDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principal
    principalType: 'ServicePrincipal'
  }
}]

// Host storage (AzureWebJobsStorage) with an identity: the Functions host needs Storage Blob Data Owner (it creates
// containers, keeps leases, locks and keys in blobs), and the blob trigger also uses queues of that account, which needs
// Storage Queue Data Contributor. See https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
// (the same account holds the datasets, so these also cover the storage layout for the Functions app).
resource hostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, functionsPrincipalId, roles.storageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource hostQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, functionsPrincipalId, roles.storageQueueDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

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

// The trainer publishes training events; so do the trainer watches, for a trainer that died without a word (the worker's,
// and the Functions app's WatchTrainers timer while the worker sleeps). The worker receives them.
resource trainingSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principal in [trainerPrincipalId, workerPrincipalId, functionsPrincipalId]: {
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

// The Functions app's WatchTrainers timer reads the trainer job's executions (to find runs that died without a word while
// the worker sleeps); it never starts or stops one, so it reads, on the job only.
resource watch 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: trainerJob
  name: guid(trainerJob.id, functionsPrincipalId, roles.reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// KEDA scales the worker on the active message count of each entity it consumes, read with the worker's identity through
// the Service Bus management (ATOM) API. Reading runtime properties needs the Manage claim, which only Azure Service Bus
// Data Owner grants. Scoped to each consumed entity: the queue and the two subscriptions. Entity scope includes topic
// subscriptions ("Queue, topic, or subscription: role assignment applies to the specific Service Bus entity",
// https://learn.microsoft.com/azure/service-bus-messaging/service-bus-managed-service-identity#choose-the-resource-scope;
// the portal can't assign at subscription scope, ARM and the CLI can), so the topic itself gets no Data Owner.
resource scalerRequests 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: requests
  name: guid(requests.id, workerPrincipalId, roles.serviceBusDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource scalerPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: publisher
  name: guid(publisher.id, workerPrincipalId, roles.serviceBusDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource scalerStatus 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: status
  name: guid(status.id, workerPrincipalId, roles.serviceBusDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}
