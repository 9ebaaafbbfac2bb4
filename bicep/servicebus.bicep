@description('Service Bus namespace name.')
param name string
param location string
param tags object

@description('Queue of FineTuneRequested.')
param requestsQueue string = 'finetune-requests'

@description('Topic of training events.')
param trainingTopic string = 'training-events'

@description('Topic of model events.')
param modelTopic string = 'model-events'

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource requests 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: requestsQueue
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    deadLetteringOnMessageExpiration: true
    maxDeliveryCount: 5
    lockDuration: 'PT1M'
  }
}

resource training 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' = {
  parent: namespace
  name: trainingTopic
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
  }
}

resource publisher 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' = {
  parent: training
  name: 'publisher'
  properties: {
    deadLetteringOnMessageExpiration: true
    maxDeliveryCount: 5
    lockDuration: 'PT1M'
  }
}

// A subscription created through ARM gets a '$Default' rule (TrueFilter, 1=1); a second, filtered rule beside it would
// still let every message through (rules are OR-ed). So the filter IS the '$Default' rule: this PUT replaces the
// auto-created catch-all (the ARM subscription resource has no property to set the default rule at creation).
resource publisherRule 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2022-10-01-preview' = {
  parent: publisher
  name: '$Default'
  properties: {
    filterType: 'SqlFilter'
    sqlFilter: {
      sqlExpression: 'type IN (\'TrainingCompleted\', \'TrainingFailed\')'
    }
  }
}

resource status 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' = {
  parent: training
  name: 'status'
  properties: {
    deadLetteringOnMessageExpiration: true
    maxDeliveryCount: 5
    lockDuration: 'PT1M'
  }
}

resource models 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' = {
  parent: namespace
  name: modelTopic
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
  }
}

output id string = namespace.id
output name string = namespace.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
output requestsQueueId string = requests.id
output trainingTopicId string = training.id
output modelTopicId string = models.id
output requestsQueueName string = requests.name
output trainingTopicName string = training.name
output publisherSubscriptionName string = publisher.name
output statusSubscriptionName string = status.name
