using '../main.bicep'

param environmentName = 'prod'
param trainerImage = 'REGISTRY.azurecr.io/tune-trainer:1'
param workerImage = 'REGISTRY.azurecr.io/tune-worker:1'
