using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Azure.Messaging.ServiceBus.Administration;
using Serverless.Azure.Messaging;
using Serverless.Contracts;
using Serverless.Core.Ports;

namespace Serverless.Azure.LiveTests;

/// <summary>The message bus contract against a real Service Bus namespace (real time passes; each test uses its own entities).</summary>
public sealed class AzureMessageBusContractTests : MessageBusContract
{
    protected override IMessageBus CreateBus()
    {
        var connection = Environment.GetEnvironmentVariable("SERVICEBUS_CONNECTION");
        var ns = Environment.GetEnvironmentVariable("SERVICEBUS_NAMESPACE");
        if (connection is not null)
        {
            return new AzureMessageBus(new ServiceBusClient(connection), new ServiceBusAdministrationClient(connection));
        }

        if (ns is not null)
        {
            var credential = new DefaultAzureCredential();
            return new AzureMessageBus(new ServiceBusClient(ns, credential), new ServiceBusAdministrationClient(ns, credential));
        }

        throw new InvalidOperationException("unreachable: the tests skip without SERVICEBUS_CONNECTION or SERVICEBUS_NAMESPACE");
    }

    protected override Task PassAsync(TimeSpan time) => Task.Delay(time);
}
