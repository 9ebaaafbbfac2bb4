targetScope = 'resourceGroup'

@description('Environment name (azd sets it), used in resource names.')
@minLength(2)
@maxLength(12)
param environmentName string

@description('Region.')
param location string = resourceGroup().location

@description('Trainer image (built from src/Serverless.Trainer/Dockerfile with the CUDA libtorch backend).')
param trainerImage string = 'mcr.microsoft.com/dotnet/runtime:10.0'

@description('Worker image (built from functions/Serverless.Worker/Dockerfile).')
param workerImage string = 'mcr.microsoft.com/dotnet/aspnet:10.0'

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

module apps '../bicep/containerapps.bicep' = {
  name: 'containerapps'
  params: {
    prefix: prefix
    location: location
    tags: tags
    workspaceCustomerId: monitoring.outputs.workspaceCustomerId
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
    insightsName: monitoring.outputs.insightsName
  }
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
    serviceBusNamespace: bus.outputs.fullyQualifiedNamespace
    insightsName: monitoring.outputs.insightsName
  }
}

module rbac '../bicep/rbac.bicep' = {
  name: 'rbac'
  params: {
    storageAccountName: storage.outputs.name
    serviceBusName: bus.outputs.name
    registryName: registry.outputs.name
    trainerJobName: apps.outputs.trainerJobName
    functionsPrincipalId: identity.outputs.functionsPrincipalId
    workerPrincipalId: identity.outputs.workerPrincipalId
    trainerPrincipalId: identity.outputs.trainerPrincipalId
    insightsName: monitoring.outputs.insightsName
  }
}

output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output AZURE_SERVICEBUS_NAMESPACE string = bus.outputs.fullyQualifiedNamespace
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_TRAINER_JOB_ID string = apps.outputs.trainerJobId
output AZURE_FUNCTIONS_HOST string = functions.outputs.hostName
