@description('Name prefix.')
param prefix string
param location string
param tags object

resource functions 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-id-functions'
  location: location
  tags: tags
}

resource worker 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-id-worker'
  location: location
  tags: tags
}

resource trainer 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-id-trainer'
  location: location
  tags: tags
}

output functionsId string = functions.id
output functionsPrincipalId string = functions.properties.principalId
output functionsClientId string = functions.properties.clientId
output workerId string = worker.id
output workerPrincipalId string = worker.properties.principalId
output workerClientId string = worker.properties.clientId
output trainerId string = trainer.id
output trainerPrincipalId string = trainer.properties.principalId
output trainerClientId string = trainer.properties.clientId
