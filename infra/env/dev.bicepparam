using '../main.bicep'

param environmentName = 'dev'
