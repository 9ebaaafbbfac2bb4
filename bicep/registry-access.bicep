@description('Image pulls: the worker and trainer identities may pull from the registry, and nothing else. A module of its own, so that the Container Apps module can depend on it: a container app or job pulls its image while it is created, and fails if the role is not there yet.')
param registryName string

@description('Principals that pull images (the worker and the trainer identities).')
param pullerPrincipalIds array

var roles = {
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource pulls 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principal in pullerPrincipalIds: {
  scope: registry
  name: guid(registry.id, principal, roles.acrPull)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: principal
    principalType: 'ServicePrincipal'
  }
}]
