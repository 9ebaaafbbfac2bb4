targetScope = 'resourceGroup'

@description('Environment name (azd sets it), used in resource names.')
@minLength(2)
@maxLength(12)
param environmentName string

// The trainer runs on a serverless GPU workload profile (Consumption-GPU-NC24-A100 by default), which Container Apps
// offers only in some regions. Regions offering the A100 profile, from "Using serverless GPUs in Azure Container Apps",
// https://learn.microsoft.com/azure/container-apps/gpu-serverless-overview#supported-regions : West US 3, West US,
// Australia East, Sweden Central. (West Europe offers only the T4 profile, Consumption-GPU-NC8as-T4, and the trainer's
// 24 vCPU / 220 GiB job needs the A100 one.) The list grows: check the page before adding a region here.
@description('Region of every resource: one where Container Apps offers the serverless A100 GPU profile.')
@allowed([
  'westus3'
  'westus'
  'australiaeast'
  'swedencentral'
])
param location string = 'westus3'

@description('Trainer image (built and pushed by infra/hooks/predeploy.sh from src/Serverless.Trainer/Dockerfile with the CUDA libtorch backend); a public placeholder until then.')
param trainerImage string = 'mcr.microsoft.com/k8se/quickstart-jobs:latest'

@description('Worker image (built and pushed by azd from functions/Serverless.Worker/Dockerfile); a public placeholder until then.')
param workerImage string = 'mcr.microsoft.com/azuredocs/containerapps-helloworld:latest'

var prefix = 'tune-${environmentName}'
var compact = toLower(replace('tune${environmentName}${uniqueString(resourceGroup().id)}', '-', ''))
var tags = {
  'azd-env-name': environmentName
  application: 'serverless-transfer-learning'
}

module identity '../bicep/identity.bicep' = {
  name: 'identity'
  params: {
    prefix: prefix
    location: location
    tags: tags
  }
}

module storage '../bicep/storage.bicep' = {
  name: 'storage'
  params: {
    name: take(compact, 24)
    location: location
    tags: tags
  }
}

module bus '../bicep/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    name: '${prefix}-bus-${uniqueString(resourceGroup().id)}'
    location: location
    tags: tags
  }
}

module monitoring '../bicep/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    prefix: prefix
    location: location
    tags: tags
  }
}

module registry '../bicep/registry.bicep' = {
  name: 'registry'
  params: {
    name: take(compact, 50)
    location: location
    tags: tags
  }
}

// Before the container apps: a container app or job pulls its image while it is created, so AcrPull must exist first.
module registryAccess '../bicep/registry-access.bicep' = {
  name: 'registry-access'
  params: {
    registryName: registry.outputs.name
    pullerPrincipalIds: [
      identity.outputs.workerPrincipalId
      identity.outputs.trainerPrincipalId
    ]
  }
}

module apps '../bicep/containerapps.bicep' = {
  name: 'containerapps'
  params: {
    prefix: prefix
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    registryServer: registry.outputs.loginServer
    trainerImage: trainerImage
    workerImage: workerImage
    trainerIdentityId: identity.outputs.trainerId
    trainerClientId: identity.outputs.trainerClientId
    workerIdentityId: identity.outputs.workerId
    workerClientId: identity.outputs.workerClientId
    blobEndpoint: storage.outputs.blobEndpoint
    serviceBusNamespace: bus.outputs.fullyQualifiedNamespace
    serviceBusNamespaceName: bus.outputs.name
    requestsQueue: bus.outputs.requestsQueueName
    trainingTopic: bus.outputs.trainingTopicName
    publisherSubscription: bus.outputs.publisherSubscriptionName
    statusSubscription: bus.outputs.statusSubscriptionName
    insightsName: monitoring.outputs.insightsName
  }
  dependsOn: [
    registryAccess
  ]
}

module functions '../bicep/functions.bicep' = {
  name: 'functions'
  params: {
    prefix: prefix
    location: location
    tags: tags
    identityId: identity.outputs.functionsId
    identityClientId: identity.outputs.functionsClientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    serviceBusNamespace: bus.outputs.fullyQualifiedNamespace
    insightsName: monitoring.outputs.insightsName
    trainerJobId: apps.outputs.trainerJobId
  }
}

module rbac '../bicep/rbac.bicep' = {
  name: 'rbac'
  params: {
    storageAccountName: storage.outputs.name
    serviceBusName: bus.outputs.name
    requestsQueue: bus.outputs.requestsQueueName
    trainingTopic: bus.outputs.trainingTopicName
    publisherSubscription: bus.outputs.publisherSubscriptionName
    statusSubscription: bus.outputs.statusSubscriptionName
    trainerJobName: apps.outputs.trainerJobName
    functionsPrincipalId: identity.outputs.functionsPrincipalId
    workerPrincipalId: identity.outputs.workerPrincipalId
    trainerPrincipalId: identity.outputs.trainerPrincipalId
    insightsName: monitoring.outputs.insightsName
  }
}

// azd exports the outputs as environment values to the hooks (infra/hooks) and to the next `azd provision`.
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output AZURE_SERVICEBUS_NAMESPACE string = bus.outputs.fullyQualifiedNamespace
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_TRAINER_JOB_ID string = apps.outputs.trainerJobId
output AZURE_TRAINER_JOB_NAME string = apps.outputs.trainerJobName
output AZURE_FUNCTIONS_APP_NAME string = functions.outputs.name
output AZURE_FUNCTIONS_HOST string = functions.outputs.hostName
output AZURE_STORAGE_EVENTS_TOPIC string = functions.outputs.storageEventsTopicName
