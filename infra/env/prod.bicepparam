using '../main.bicep'

param environmentName = 'prod'
// Images come from azd: SERVICE_WORKER_IMAGE_NAME is set by `azd deploy` of the worker service, TRAINER_IMAGE by
// infra/hooks/predeploy.sh. Until then, the same public placeholders as infra/main.parameters.json.
param trainerImage = readEnvironmentVariable('TRAINER_IMAGE', 'mcr.microsoft.com/k8se/quickstart-jobs:latest')
param workerImage = readEnvironmentVariable('SERVICE_WORKER_IMAGE_NAME', 'mcr.microsoft.com/azuredocs/containerapps-helloworld:latest')
